// Sign-in. Locally: the local stack's issuer signs a token for a user name. In AWS: the
// Cognito hosted UI, authorization code flow with PKCE; the ID token is what the HTTP
// API's JWT authorizer checks (its audience is the app client).
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const next = safeNext(params.get("next"));
  const error = document.getElementById("page-error");
  const signIn = Lightbox.config.signIn;

  function safeNext(value) {
    // Only paths on this site: never an open redirect.
    return value && value.startsWith("/") && !value.startsWith("//") ? value : "/";
  }

  function done(token) {
    Lightbox.signedIn(token);
    location.assign(next);
  }

  // --- locally ------------------------------------------------------------------------

  async function localSignIn(event) {
    event.preventDefault();
    const user = document.getElementById("user").value.trim();
    const response = await fetch("/local/sign-in", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user }),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      Lightbox.show(error, typeof data.error === "string" ? data.error : "Could not sign in.");
      return;
    }
    done(data.token);
  }

  // --- Cognito hosted UI --------------------------------------------------------------

  const redirectUri = `${location.origin}/sign-in`;

  function base64url(bytes) {
    return btoa(String.fromCharCode(...new Uint8Array(bytes)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function toHostedUi(event) {
    event.preventDefault();
    const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
    const challenge = base64url(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    sessionStorage.setItem("lightbox.pkce", JSON.stringify({ verifier, state, next }));
    const query = new URLSearchParams({
      response_type: "code", client_id: signIn.clientId, redirect_uri: redirectUri,
      scope: "openid email", state, code_challenge_method: "S256", code_challenge: challenge,
    });
    location.assign(`${signIn.domain}/oauth2/authorize?${query}`);
  }

  async function finishHostedSignIn(code) {
    const saved = JSON.parse(sessionStorage.getItem("lightbox.pkce") || "{}");
    sessionStorage.removeItem("lightbox.pkce");
    if (!saved.verifier || saved.state !== params.get("state")) {
      Lightbox.show(error, "That sign-in link is stale; please sign in again.");
      return;
    }
    const response = await fetch(`${signIn.domain}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code", client_id: signIn.clientId, code,
        redirect_uri: redirectUri, code_verifier: saved.verifier,
      }),
    });
    const tokens = await response.json().catch(() => ({}));
    if (!response.ok || !tokens.id_token) {
      Lightbox.show(error, "Sign-in failed; please try again.");
      return;
    }
    Lightbox.signedIn(tokens.id_token);
    location.assign(safeNext(saved.next));
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (signIn.mode === "cognito") {
      document.getElementById("hosted-sign-in").addEventListener("click", toHostedUi);
      if (params.get("code")) finishHostedSignIn(params.get("code"));
    } else if (signIn.mode === "local") {
      document.getElementById("local-sign-in").addEventListener("submit", localSignIn);
      // ready: it starts disabled so a submit cannot reload the page before this
      document.getElementById("local-sign-in-button").disabled = false;
    }
  });
})();
