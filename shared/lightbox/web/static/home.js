// The new-shoot page: choose a photo and scenes (and, for "with a model" scenes, an
// avatar: avatars.js), see the cost, then ask the API for a presigned POST and send the
// photo straight to the bucket (with a progress bar: upload.js).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  let photo = null;
  let scenes = [];
  let balance = null;

  // --- the photo (upload.js) ----------------------------------------------------------

  function choose(file) {
    const problem = LightboxUpload.photoProblem(file);
    Lightbox.show($("form-error"), problem || "");
    photo = problem ? null : file;
    return photo !== null;
  }

  // --- scenes and cost ----------------------------------------------------------------

  function sceneItem(scene) {
    const item = document.createElement("li");
    item.innerHTML = `
      <input type="checkbox" name="scene">
      <label>
        <img alt="" width="80" height="80">
        <span class="name"></span>
        <span class="tag" hidden>With a model: needs an avatar</span>
        <span class="price"></span>
      </label>`;
    const box = item.querySelector("input");
    box.id = `scene-${scene.id}`;
    box.value = scene.id;
    box.addEventListener("change", showCost);
    item.querySelector("label").htmlFor = box.id;
    item.querySelector("img").src = scene.thumbnail_url;
    item.querySelector(".name").textContent = scene.name;
    item.querySelector(".tag").hidden = !scene.person;
    if (scene.person) item.classList.add("with-model");
    item.querySelector(".price").textContent =
      `${scene.price} credit${scene.price === 1 ? "" : "s"} a shot`;
    return item;
  }

  async function loadScenes() {
    scenes = await Lightbox.api("/api/scenes");
    $("scenes").replaceChildren(...scenes.map(sceneItem));
    $("scenes").setAttribute("aria-busy", "false");
  }

  function chosenScenes() {
    return [...document.querySelectorAll("input[name=scene]:checked")].map((box) => box.value);
  }

  // The chosen scenes with a person: they need an avatar (the API answers 422 without).
  function personScenes(chosen) {
    const person = new Set(scenes.filter((s) => s.person).map((s) => s.id));
    return chosen.filter((id) => person.has(id));
  }

  // --- marketplace presets -------------------------------------------------------------

  function presetItem(preset) {
    const item = document.createElement("li");
    item.innerHTML = `
      <input type="checkbox" name="preset">
      <label>
        <span class="name"></span>
        <span class="size"></span>
        <span class="what"></span>
      </label>`;
    const box = item.querySelector("input");
    box.id = `preset-${preset.id}`;
    box.value = preset.id;
    box.checked = preset.id === "original";
    item.querySelector("label").htmlFor = box.id;
    item.querySelector(".name").textContent = preset.name;
    item.querySelector(".size").textContent =
      `${preset.size}${preset.white_background ? ", on pure white" : ""}`;
    item.querySelector(".what").textContent = preset.purpose;
    return item;
  }

  async function loadPresets() {
    const presets = await Lightbox.api("/api/presets");
    $("presets").replaceChildren(...presets.map(presetItem));
    $("presets").setAttribute("aria-busy", "false");
  }

  function chosenPresets() {
    return [...document.querySelectorAll("input[name=preset]:checked")].map((box) => box.value);
  }

  function variants() {
    return Math.max(1, parseInt($("variants").value, 10) || 1);
  }

  function showCost() {
    const chosen = chosenScenes();
    const withModel = personScenes(chosen);
    LightboxAvatars.need(withModel.length > 0);
    if (!chosen.length) {
      $("cost").textContent = "Choose at least one scene.";
      return;
    }
    const price = Object.fromEntries(scenes.map((s) => [s.id, s.price]));
    const shots = chosen.length * variants();
    const credits = chosen.reduce((sum, id) => sum + price[id], 0) * variants();
    let have = balance === null ? "" : ` You have ${balance}.`;
    if (balance !== null && credits > balance) have += " Buy credits first.";
    let models = "";
    if (withModel.length) {
      const modelShots = withModel.length * variants();
      const modelCredits = withModel.reduce((sum, id) => sum + price[id], 0) * variants();
      models = ` (${modelShots} with a model: ${modelCredits} credit${modelCredits === 1 ? "" : "s"})`;
    }
    $("cost").textContent =
      `${shots} shot${shots === 1 ? "" : "s"} for ${credits} credit${credits === 1 ? "" : "s"}` +
      `${models}.${have}`;
  }

  // --- the upload ---------------------------------------------------------------------

  async function start(event) {
    event.preventDefault();
    const error = $("form-error");
    const chosen = chosenScenes();
    const avatarId = personScenes(chosen).length ? LightboxAvatars.chosen() : null;
    const problem = LightboxUpload.photoProblem(photo) ||
      (chosen.length ? null : "Choose at least one scene.") ||
      (chosenPresets().length ? null : "Choose where the shots go (at least one).") ||
      (personScenes(chosen).length && !avatarId
        ? "Choose an avatar for the scenes with a model (or create your own)." : null);
    if (problem) {
      Lightbox.show(error, problem);
      if (avatarId === null && personScenes(chosen).length && photo) LightboxAvatars.focus();
      return;
    }
    Lightbox.show(error, "");
    $("start").disabled = true;
    try {
      const ticket = await Lightbox.api("/api/uploads", {
        method: "POST",
        body: {
          scenes: chosen, variants: variants(), presets: chosenPresets(),
          ...(avatarId ? { avatar_id: avatarId } : {}),
        },
      });
      await LightboxUpload.postToBucket(ticket, photo);
      location.assign(`/jobs/${encodeURIComponent(ticket.job_id)}`);
    } catch (failure) {
      Lightbox.show(error, failure.message);
      $("start").disabled = false;
      Lightbox.refreshBalance().then((account) => { balance = account.balance; showCost(); });
    }
  }

  // --- jobs and purchases -------------------------------------------------------------

  async function loadJobs() {
    const { jobs } = await Lightbox.api("/api/jobs?limit=20");
    if (!jobs.length) return;
    $("jobs").replaceChildren(...jobs.map((job) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = `/jobs/${encodeURIComponent(job.job_id)}`;
      const status = job.status.replace(/_/g, " ");
      link.textContent = `${new Date(job.created_at).toLocaleString()}: ` + (job.kind === "tool"
        ? `${job.tool.replace(/-/g, " ")} (tool), ${status}`
        : `${status}, ${job.delivered} of ${job.shots_total} shots`);
      item.append(link);
      return item;
    }));
  }

  // After Stripe Checkout the webhook may land a moment after the buyer comes back.
  async function showPurchase() {
    const notice = $("checkout-notice");
    const outcome = new URLSearchParams(location.search).get("checkout");
    if (outcome === "cancelled") Lightbox.show(notice, "Checkout cancelled: nothing was charged.");
    if (outcome !== "done") return;
    const before = sessionStorage.getItem(Lightbox.BALANCE_KEY);
    sessionStorage.removeItem(Lightbox.BALANCE_KEY);
    Lightbox.show(notice, "Thank you! Your credits are on their way.");
    for (let tries = 0; tries < 15; tries += 1) {
      const account = await Lightbox.refreshBalance();
      balance = account.balance;
      showCost();
      if (before === null || String(account.balance) !== before) {
        Lightbox.show(notice, `Thank you! You now have ${account.balance} credits.`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    if (!Lightbox.token()) return;  // app.js is on its way to the sign-in page
    LightboxUpload.watchDrops(choose);
    $("variants").addEventListener("input", showCost);
    $("shoot-form").addEventListener("submit", start);
    $("start").disabled = false;  // ready: it starts disabled so a submit cannot reload
    // The avatar wizard reserves and settles credits: keep the cost line's balance true.
    document.addEventListener("lightbox:credits", () => {
      Lightbox.refreshBalance().then((account) => { balance = account.balance; showCost(); })
        .catch(() => {});
    });
    try {
      const [account] = await Promise.all([
        Lightbox.refreshBalance(), loadScenes(), loadPresets(), loadJobs()]);
      balance = account.balance;
      showCost();
      await showPurchase();
    } catch (failure) {
      Lightbox.show($("page-error"), failure.message);
    }
  });
})();
