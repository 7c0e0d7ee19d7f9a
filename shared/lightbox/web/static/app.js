// Lightbox: what every page shares. The sign-in token, calls to /api/* with it, the
// header's balance and "Buy credits". Plain JavaScript, no build step.
"use strict";

const Lightbox = (() => {
  const TOKEN_KEY = "lightbox.token";
  const BALANCE_KEY = "lightbox.balanceBeforeCheckout";
  const config = JSON.parse(document.getElementById("lightbox-config").textContent);

  function claims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part));
    } catch {
      return null;
    }
  }

  function token() {
    const saved = localStorage.getItem(TOKEN_KEY);
    const seen = saved && claims(saved);
    if (!seen || seen.exp * 1000 < Date.now() + 30000) {
      localStorage.removeItem(TOKEN_KEY);
      return null;
    }
    return saved;
  }

  function signedIn(newToken) {
    localStorage.setItem(TOKEN_KEY, newToken);
  }

  function signOut() {
    localStorage.removeItem(TOKEN_KEY);
    location.assign("/sign-in");
  }

  function toSignIn() {
    const next = location.pathname + location.search;
    location.assign(`/sign-in?next=${encodeURIComponent(next)}`);
  }

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || (body && body.message) || `The server answered ${status}.`);
      this.status = status;
      this.code = error.code || "";
      this.details = error.details || {};
    }
  }

  // fetch() against the API: JSON in and out, the token attached, errors as ApiError.
  async function api(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    const current = token();
    if (current) headers.Authorization = `Bearer ${current}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => null);
    if (response.status === 401) {
      toSignIn();
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function show(element, message) {
    element.textContent = message;
    element.hidden = !message;
  }

  async function refreshBalance() {
    const account = await api("/api/credits");
    document.getElementById("balance").textContent = account.balance;
    return account;
  }

  async function buyCredits(event) {
    event.preventDefault();
    const button = document.getElementById("buy-credits");
    button.disabled = true;
    try {
      const pack = document.getElementById("buy-pack").value;
      // The home page compares against it when the buyer comes back from checkout.
      sessionStorage.setItem(BALANCE_KEY, document.getElementById("balance").textContent);
      const answer = await api("/api/checkout", {
        method: "POST", body: { pack_id: pack, request_id: crypto.randomUUID() },
      });
      location.assign(answer.url);
    } catch (error) {
      show(document.getElementById("page-error"), error.message);
      button.disabled = false;
    }
  }

  function startHeader() {
    const account = document.getElementById("account");
    if (!account) return;
    const current = token();
    if (!current) {
      toSignIn();
      return;
    }
    const seen = claims(current);
    document.getElementById("who").textContent =
      seen.email || seen["cognito:username"] || seen.sub;
    account.hidden = false;
    document.getElementById("sign-out").addEventListener("click", signOut);
    document.getElementById("buy-form").addEventListener("submit", buyCredits);
    refreshBalance().catch((error) => show(document.getElementById("page-error"), error.message));
  }

  document.addEventListener("DOMContentLoaded", startHeader);

  return { config, api, token, signedIn, show, refreshBalance, ApiError, BALANCE_KEY };
})();
