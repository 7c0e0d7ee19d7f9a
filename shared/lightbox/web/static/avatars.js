// The avatar picker on the new-shoot page: the person in the "with a model" shots.
// A grid of avatars (the catalogue's and the shop's own) filtered by attribute, and
// "Create your own": candidate portraits from the shop's choices, keep one, use it.
// home.js asks `LightboxAvatars.need(true)` when a "with a model" scene is chosen and
// sends `LightboxAvatars.chosen()` as the order's avatar_id.
"use strict";

const LightboxAvatars = (() => {
  const $ = (id) => document.getElementById(id);
  const PAGE_SIZE = 12;
  const POLL_MS = 1500;
  const POLL_TRIES = 400;  // about ten minutes, then the shop is told to come back
  const TITLES = {
    age_range: "Age", gender_presentation: "Gender presentation", skin_tone: "Skin tone",
    hair: "Hair", build: "Build", style: "Style", setting: "Setting",
  };
  // What a missing portrait's placeholder says, by the avatar's status.
  const NO_PORTRAIT = {
    missing: "Portrait not made yet", generating: "Portrait being made",
    failed: "Portrait could not be made", choosing: "Portrait not chosen yet",
  };
  const NO_CANDIDATE = {
    requested: "Being made…", generating: "Being made…", failed: "Could not be made",
  };

  let options = null;   // GET /api/avatars/options
  let avatars = [];     // the list the filters give, all pages
  let page = 0;
  let chosen = null;    // the chosen AvatarView
  let loading = null;   // the first load, started the first time the picker is needed
  let listing = 0;      // the latest list request: an older, slower answer is dropped
  let following = 0;    // the avatar whose candidates the wizard shows
  const changed = [];   // home.js's callbacks for a new choice

  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  function title(attribute) {
    return TITLES[attribute] || attribute.replace(/_/g, " ");
  }

  function labelOf(attribute, value) {
    const found = ((options && options.attributes[attribute]) || []).find((o) => o.id === value);
    return found ? found.label : value;
  }

  // The alt text: the name and every attribute, so the picture is never the only clue.
  function describe(avatar) {
    const parts = Object.entries(avatar.attributes)
      .map(([name, value]) => `${title(name).toLowerCase()} ${labelOf(name, value)}`);
    return `${avatar.name}: ${parts.join(", ")}`;
  }

  function element(tag, className, text) {
    const made = document.createElement(tag);
    if (className) made.className = className;
    if (text !== undefined) made.textContent = text;
    return made;
  }

  // The portrait, or a placeholder that says why there is none (no URL until it is made).
  function portrait(url, alt, missing) {
    if (url) {
      const image = element("img");
      image.src = url;
      image.alt = alt;
      image.width = 120;
      image.height = 160;
      image.loading = "lazy";
      return image;
    }
    const placeholder = element("span", "portrait-placeholder");
    placeholder.setAttribute("role", "img");
    placeholder.setAttribute("aria-label", `${alt}. ${missing}.`);
    placeholder.append(element("span", "", missing));
    placeholder.firstChild.setAttribute("aria-hidden", "true");
    return placeholder;
  }

  function attributeSelect(prefix, name, values, emptyLabel) {
    const row = element("p");
    const label = element("label", "", title(name));
    const select = element("select");
    select.id = `${prefix}-${name}`;
    select.dataset.attribute = name;
    label.htmlFor = select.id;
    select.append(new Option(emptyLabel, ""));
    values.forEach((option) => select.append(new Option(option.label, option.id)));
    row.append(label, select);
    return row;
  }

  function announceChoice() {
    $("avatar-chosen").textContent = chosen
      ? `Chosen: ${chosen.name} (${chosen.kind === "custom" ? "your own" : "Lightbox’s"}).` : "";
    changed.forEach((callback) => callback(chosen));
  }

  function choose(avatar) {
    chosen = avatar;
    Lightbox.show($("avatar-error"), "");
    announceChoice();
  }

  function creditsChanged() {
    document.dispatchEvent(new CustomEvent("lightbox:credits"));
  }

  // --- the picker ---------------------------------------------------------------------

  function avatarItem(avatar) {
    const item = element("li");
    item.dataset.avatarId = avatar.avatar_id;
    const box = element("input");
    box.type = "radio";
    box.name = "avatar";
    box.id = `avatar-${avatar.avatar_id}`;
    box.value = avatar.avatar_id;
    box.disabled = !avatar.usable;
    box.checked = Boolean(chosen && chosen.avatar_id === avatar.avatar_id);
    box.addEventListener("change", () => choose(avatar));
    const label = element("label");
    label.htmlFor = box.id;
    label.append(portrait(avatar.portrait_url, describe(avatar),
                          NO_PORTRAIT[avatar.status] || "No portrait yet"));
    // Said once already by the portrait's alt text: hidden from screen readers here.
    const name = element("span", "name", avatar.name);
    const detail = element("span", "detail", [
      labelOf("gender_presentation", avatar.attributes.gender_presentation),
      labelOf("age_range", avatar.attributes.age_range),
      avatar.kind === "custom" ? "your own" : "",
    ].filter(Boolean).join(" · "));
    name.setAttribute("aria-hidden", "true");
    detail.setAttribute("aria-hidden", "true");
    label.append(name, detail);
    item.append(box, label);
    if (avatar.kind === "custom" && avatar.status === "choosing") {
      const resume = element("button", "secondary small", "Choose its portrait");
      resume.type = "button";
      resume.setAttribute("aria-label", `Choose ${avatar.name}’s portrait`);
      resume.addEventListener("click", () => resumeWizard(avatar.avatar_id));
      item.append(resume);
    }
    return item;
  }

  function lastPage() {
    return Math.max(0, Math.ceil(avatars.length / PAGE_SIZE) - 1);
  }

  function render() {
    const shown = avatars.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    $("avatars").replaceChildren(...shown.map(avatarItem));
    $("avatars").setAttribute("aria-busy", "false");
    const ready = avatars.filter((a) => a.usable).length;
    $("avatar-count").textContent = avatars.length
      ? `${plural(avatars.length, "avatar")} match, ${ready} ready to use.`
      : "No avatar matches these filters.";
    const pages = lastPage() + 1;
    $("avatar-pager").hidden = pages <= 1;
    $("avatar-page").textContent = `Page ${page + 1} of ${pages}`;
    $("avatars-previous").disabled = page === 0;
    $("avatars-next").disabled = page >= pages - 1;
  }

  function query() {
    const params = new URLSearchParams({ source: $("avatar-source").value });
    if ($("avatar-usable").checked) params.set("usable", "true");
    document.querySelectorAll("#avatar-filters select[data-attribute]").forEach((select) => {
      if (select.value) params.append(select.dataset.attribute, select.value);
    });
    return params;
  }

  // The API answers the whole filtered list (no paging): the pages are the page's own.
  async function list({ keepPage = false } = {}) {
    const mine = ++listing;
    $("avatars").setAttribute("aria-busy", "true");
    try {
      const answer = await Lightbox.api(`/api/avatars?${query()}`);
      if (mine !== listing) return;
      avatars = answer.avatars;
      page = keepPage ? Math.min(page, lastPage()) : 0;
      Lightbox.show($("avatar-error"), "");
      render();
    } catch (failure) {
      if (mine !== listing) return;
      $("avatars").setAttribute("aria-busy", "false");
      Lightbox.show($("avatar-error"), failure.message);
    }
  }

  function turn(step) {
    page = Math.min(Math.max(0, page + step), lastPage());
    render();
    $("avatar-page").focus();
  }

  // After "keep": no filters, and the page that holds it (the shop's own come first).
  async function showChosen() {
    document.querySelectorAll("#avatar-filters select[data-attribute]")
      .forEach((select) => { select.value = ""; });
    $("avatar-source").value = "all";
    $("avatar-usable").checked = false;
    await list();
    const at = avatars.findIndex((a) => chosen && a.avatar_id === chosen.avatar_id);
    if (at >= 0) {
      page = Math.floor(at / PAGE_SIZE);
      render();
    }
  }

  // --- "Create your own" ----------------------------------------------------------------

  function candidatesAsked() {
    const most = options ? options.max_candidates : 4;
    return Math.min(most, Math.max(1, parseInt($("wizard-candidates").value, 10) || 1));
  }

  function showWizardCost() {
    if (!options) return;
    const count = candidatesAsked();
    $("wizard-cost").textContent =
      `${plural(count, "candidate portrait")} for ${plural(count * options.portrait_price, "credit")}` +
      ". Any that cannot be made are refunded.";
  }

  function wizardStatus(view) {
    const made = view.candidates.filter((c) => c.status === "ready").length;
    switch (view.status) {
      case "generating":
        return `Making ${view.name}’s portraits: ${made} of ${view.candidates.length} ready…`;
      case "choosing":
        return `${plural(made, "portrait")} made. Keep the one you like.`;
      case "ready":
        return `${view.name} is yours, with portrait ${view.chosen}, and chosen for this shoot.`;
      default:
        return view.reason || "No portrait could be made; your credits were refunded.";
    }
  }

  function candidateItem(view, candidate) {
    const item = element("li");
    const number = candidate.candidate;
    item.append(portrait(candidate.portrait_url, `${view.name}, portrait ${number}`,
                         candidate.error || NO_CANDIDATE[candidate.status] || "Not made"));
    const keep = element("button", "secondary", view.chosen === number ? "Kept" : "Keep this one");
    keep.type = "button";
    keep.setAttribute("aria-label", `Keep portrait ${number} of ${view.name}`);
    keep.setAttribute("aria-pressed", String(view.chosen === number));
    keep.disabled = !candidate.portrait_url || !["choosing", "ready"].includes(view.status);
    keep.addEventListener("click", () => keepCandidate(view, number));
    item.append(keep);
    return item;
  }

  function showCandidates(view) {
    $("candidates-area").hidden = false;
    $("wizard-status").textContent = wizardStatus(view);
    $("candidates").replaceChildren(...view.candidates.map((c) => candidateItem(view, c)));
  }

  // Poll the avatar until every candidate has finished (made or failed).
  async function follow(view) {
    const mine = ++following;
    for (let tries = 0; view.status === "generating"; tries += 1) {
      if (mine !== following) return;
      showCandidates(view);
      if (tries >= POLL_TRIES) {
        $("wizard-status").textContent =
          "The portraits are taking long: come back later, they will be under “Your own”.";
        return;
      }
      await wait(POLL_MS);
      view = await Lightbox.api(`/api/avatars/${encodeURIComponent(view.avatar_id)}`);
    }
    if (mine !== following) return;
    showCandidates(view);
    creditsChanged();  // settled: made candidates spent, failed ones refunded
    list({ keepPage: true });
  }

  function wizardFailure(failure) {
    let message = failure.message;
    if (failure.status === 402) message += " Buy credits first.";
    if (failure.status === 422 && failure.details.problems) {
      message += ` (${failure.details.problems.map((p) => title(p.field)).join(", ")})`;
    }
    Lightbox.show($("wizard-error"), message);
  }

  async function createAvatar() {
    const body = {};
    const missing = [];
    document.querySelectorAll("#wizard-fields select[data-attribute]").forEach((select) => {
      if (select.value) body[select.dataset.attribute] = select.value;
      else missing.push(select);
    });
    if (missing.length) {
      Lightbox.show($("wizard-error"),
                    `Choose: ${missing.map((s) => title(s.dataset.attribute)).join(", ")}.`);
      missing[0].focus();
      return;
    }
    const name = $("wizard-name").value.trim();
    if (name) body.name = name;
    body.candidates = candidatesAsked();
    Lightbox.show($("wizard-error"), "");
    $("wizard-create").disabled = true;
    try {
      const view = await Lightbox.api("/api/avatars", { method: "POST", body });
      creditsChanged();  // reserved
      await follow(view);
    } catch (failure) {
      wizardFailure(failure);
    } finally {
      $("wizard-create").disabled = false;
    }
  }

  async function keepCandidate(view, number) {
    Lightbox.show($("wizard-error"), "");
    try {
      const kept = await Lightbox.api(
        `/api/avatars/${encodeURIComponent(view.avatar_id)}/keep`,
        { method: "POST", body: { candidate: number } });
      showCandidates(kept);
      choose(kept);
      await showChosen();
    } catch (failure) {
      wizardFailure(failure);
    }
  }

  async function resumeWizard(avatarId) {
    $("create-avatar").open = true;
    Lightbox.show($("wizard-error"), "");
    try {
      const view = await Lightbox.api(`/api/avatars/${encodeURIComponent(avatarId)}`);
      showCandidates(view);
      $("wizard-status").scrollIntoView({ block: "nearest" });
      await follow(view);
    } catch (failure) {
      wizardFailure(failure);
    }
  }

  // --- start ----------------------------------------------------------------------------

  async function load() {
    options = await Lightbox.api("/api/avatars/options");
    const filters = $("avatar-filters");
    const fields = $("wizard-fields");
    Object.entries(options.attributes).forEach(([name, values]) => {
      filters.append(attributeSelect("avatar-filter", name, values, "Any"));
      fields.append(attributeSelect("wizard", name, values, "Choose…"));
    });
    filters.addEventListener("change", () => list());
    $("avatar-usable").addEventListener("change", () => list());
    $("avatars-previous").addEventListener("click", () => turn(-1));
    $("avatars-next").addEventListener("click", () => turn(1));
    $("avatar-page").tabIndex = -1;
    $("wizard-candidates").max = options.max_candidates;
    $("wizard-candidates").value = options.default_candidates;
    $("wizard-candidates").addEventListener("input", showWizardCost);
    $("wizard-create").addEventListener("click", createAvatar);
    showWizardCost();
    await list();
  }

  // Shown (and loaded, the first time) only while a "with a model" scene is chosen.
  function need(needed) {
    $("avatar-picker").hidden = !needed;
    if (needed && !loading) {
      loading = load().catch((failure) => {
        loading = null;
        Lightbox.show($("avatar-error"), failure.message);
      });
    }
    return loading;
  }

  return {
    need,
    chosen: () => (chosen ? chosen.avatar_id : null),
    chosenName: () => (chosen ? chosen.name : null),
    onChange: (callback) => changed.push(callback),
    focus: () => {
      const box = document.querySelector("#avatars input:not(:disabled)");
      (box || $("avatar-source")).focus();
    },
  };
})();
