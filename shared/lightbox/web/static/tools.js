// The tools page: pick a tool (and its option), choose a photo, see the price, then ask
// the API for the tool's upload ticket, send the photo straight to the bucket (upload.js)
// and watch the image being made on its job page.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  let photo = null;
  let balance = null;

  function chosenTool() {
    return document.querySelector("input[name=tool]:checked");
  }

  function options(tool) {
    if (tool === "upscale") return { scale: parseInt($("scale").value, 10) };
    if (tool === "fit") return { preset: $("preset").value };
    return {};
  }

  // Only the chosen tool's option shows.
  function showTool() {
    const tool = chosenTool();
    document.querySelectorAll(".option").forEach((option) => {
      option.hidden = option.dataset.tool !== tool.value;
    });
    const price = parseInt(tool.dataset.price, 10);
    let have = balance === null ? "" : ` You have ${balance}.`;
    if (balance !== null && price > balance) have += " Buy credits first.";
    $("cost").textContent =
      `${tool.dataset.title}: ${price} credit${price === 1 ? "" : "s"}.${have}`;
  }

  function choose(file) {
    const problem = LightboxUpload.photoProblem(file);
    Lightbox.show($("form-error"), problem || "");
    photo = problem ? null : file;
    return photo !== null;
  }

  async function run(event) {
    event.preventDefault();
    const error = $("form-error");
    const problem = LightboxUpload.photoProblem(photo);
    if (problem) {
      Lightbox.show(error, problem);
      return;
    }
    Lightbox.show(error, "");
    $("run").disabled = true;
    const tool = chosenTool().value;
    try {
      const ticket = await Lightbox.api("/api/tools", {
        method: "POST", body: { tool, options: options(tool) },
      });
      await LightboxUpload.postToBucket(ticket, photo);
      location.assign(`/jobs/${encodeURIComponent(ticket.job_id)}`);
    } catch (failure) {
      Lightbox.show(error, failure.message);
      $("run").disabled = false;
      Lightbox.refreshBalance().then((account) => { balance = account.balance; showTool(); });
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    if (!Lightbox.token()) return;  // app.js is on its way to the sign-in page
    LightboxUpload.watchDrops(choose);
    document.querySelectorAll("input[name=tool]").forEach((input) => {
      input.addEventListener("change", showTool);
    });
    $("tool-form").addEventListener("submit", run);
    showTool();
    $("run").disabled = false;  // ready: it starts disabled so a submit cannot reload
    try {
      balance = (await Lightbox.refreshBalance()).balance;
      showTool();
    } catch (failure) {
      Lightbox.show($("page-error"), failure.message);
    }
  });
})();
