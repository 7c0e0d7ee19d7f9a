// The job page: each shot's status as the pipeline runs (polling GET /api/jobs/{id}),
// the finished shots as a gallery with a full-size view, and downloads. A tool job shows
// its one image, its download and (fit) its compliance report instead.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 1500;
  // Links are presigned for 15 minutes; refresh them well before that once finished.
  const REFRESH_MS = 10 * 60 * 1000;
  const TERMINAL = new Set(["done", "partly_done", "failed"]);
  const STATUS = {
    awaiting_upload: "Waiting for the photo…",
    cutting_out: "Cutting out the product…",
    composing: "Composing the shots…",
    done: "Done.",
    partly_done: "Done, but some shots failed.",
    failed: "This shoot failed.",
  };
  const TOOL_STATUS = {
    processing: "Making your image…",
    failed: "The image could not be made; your credit was refunded.",
  };
  const jobId = $("job").dataset.jobId;
  const path = `/api/jobs/${encodeURIComponent(jobId)}`;
  let latest = null;

  function shotTitle(shot) {
    return `${shot.scene_name}, variant ${shot.variant}`;
  }

  function preset(shot) {
    return Object.keys(shot.outputs)[0];
  }

  function shotCard(shot) {
    const item = document.createElement("li");
    item.className = "shot";
    item.id = `shot-${shot.shot_id}`;
    item.innerHTML = `
      <div class="frame"><span class="placeholder" aria-hidden="true"></span></div>
      <div class="caption">
        <span class="title"></span>
        <span class="phase"></span>
        <p class="reason"></p>
        <a class="download" hidden>Download</a>
      </div>`;
    item.querySelector(".title").textContent = shotTitle(shot);
    return item;
  }

  function showShot(item, shot) {
    item.dataset.phase = shot.phase;
    const phase = item.querySelector(".phase");
    phase.textContent = shot.phase;
    phase.className = `phase phase-${shot.phase}`;
    const reason = shot.reason || (shot.check_reasons || []).join("; ");
    item.querySelector(".reason").textContent = shot.phase === "failed" ? reason : "";
    const key = preset(shot);
    if (shot.phase !== "done" || !key) return;
    const download = item.querySelector(".download");
    download.href = shot.downloads[key];
    download.setAttribute("aria-label", `Download ${shotTitle(shot)}`);
    download.hidden = false;
    if (item.querySelector("img")) return;  // shown already: a new link would reload it
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open";
    open.setAttribute("aria-label", `View ${shotTitle(shot)} full size`);
    const image = document.createElement("img");
    image.alt = `${shotTitle(shot)}: the product in the ${shot.scene_name} scene`;
    image.src = shot.outputs[key];
    open.append(image);
    open.addEventListener("click", () => view(shot.shot_id));
    item.querySelector(".frame").replaceChildren(open);
  }

  function view(shotId) {
    const shot = latest.shots.find((s) => s.shot_id === shotId);
    const key = preset(shot);
    $("viewer-title").textContent = shotTitle(shot);
    $("viewer-image").src = shot.outputs[key];
    $("viewer-image").alt = `${shotTitle(shot)}, full size`;
    $("viewer-download").href = shot.downloads[key];
    $("viewer").showModal();
  }

  function showAvatar(avatar) {
    const figure = $("job-avatar");
    if (!avatar || !figure.hidden) return;  // shown already: a new link would reload it
    $("job-avatar-portrait").src = avatar.portrait_url;
    $("job-avatar-portrait").alt = `Portrait of ${avatar.name}`;
    $("job-avatar-name").textContent = `With ${avatar.name}, in every "with model" shot`;
    figure.hidden = false;
  }

  function showCompliance(report) {
    const unmet = report.rules.filter((rule) => !rule.passed && rule.severity === "error");
    const rules = `${unmet.length} rule${unmet.length === 1 ? "" : "s"}`;
    $("compliance-title").textContent = report.passed
      ? `Compliance with ${report.preset}: every rule met.`
      : `Compliance with ${report.preset}: ${rules} not met.`;
    $("compliance-rules").replaceChildren(...report.rules.map((rule) => {
      const item = document.createElement("li");
      const verdict = rule.passed ? "met" : rule.severity === "warning" ? "note" : "not met";
      item.className = `rule rule-${verdict.replace(" ", "-")}`;
      const name = document.createElement("span");
      name.className = "verdict";
      name.textContent = `${verdict}: ${rule.rule}`;
      item.append(name, ` ${rule.detail}`);
      return item;
    }));
    $("compliance").hidden = false;
  }

  function showTool(job) {
    $("job-title").textContent = job.tool_title;
    document.title = `${job.tool_title} · Lightbox`;
    $("job-status").textContent = TOOL_STATUS[job.status] || STATUS[job.status] || job.status;
    $("job").dataset.status = job.status;
    Lightbox.show($("job-reason"), job.status === "failed" ? job.reason || "" : "");
    $("job-actions").hidden = true;
    $("job-back").href = "/tools";
    $("job-back").textContent = "← Tools";
    const result = job.result;
    if (!result) return;
    $("tool-download").href = result.download_url;
    $("tool-download").setAttribute("aria-label", `Download the ${job.tool_title} image`);
    if (!$("tool-result").hidden) return;  // shown already: a new link would reload it
    $("tool-image").src = result.url;
    $("tool-image").alt = `${job.tool_title}: the image Lightbox made`;
    $("tool-size").textContent = `${result.width} × ${result.height} px`;
    $("tool-result").hidden = false;
    if (result.compliance) showCompliance(result.compliance);
  }

  function showJob(job) {
    latest = job;
    if (job.kind === "tool") {
      showTool(job);
      return;
    }
    const done = job.shots.filter((s) => s.phase === "done").length;
    const progress = job.shots_total ? ` ${done} of ${job.shots_total} shots done.` : "";
    $("job-status").textContent = `${STATUS[job.status] || job.status}${progress}`;
    $("job").dataset.status = job.status;
    Lightbox.show($("job-reason"), job.reason || "");
    showAvatar(job.avatar);
    $("download-zip").disabled = done === 0;
    const grid = $("shots");
    for (const shot of job.shots) {
      let item = document.getElementById(`shot-${shot.shot_id}`);
      if (!item) {
        item = shotCard(shot);
        grid.append(item);
      }
      showShot(item, shot);
    }
  }

  async function poll() {
    let job;
    try {
      job = await Lightbox.api(path);
    } catch (error) {
      if (error.status === 404) {
        $("job").hidden = true;
        $("job-missing").hidden = false;
        return;
      }
      Lightbox.show($("page-error"), `${error.message} Trying again…`);
      setTimeout(poll, POLL_MS * 4);
      return;
    }
    Lightbox.show($("page-error"), "");
    const finishing = TERMINAL.has(job.status) && !(latest && TERMINAL.has(latest.status));
    showJob(job);
    if (finishing) Lightbox.refreshBalance().catch(() => {});
    setTimeout(poll, TERMINAL.has(job.status) ? REFRESH_MS : POLL_MS);
  }

  async function downloadAll() {
    const button = $("download-zip");
    button.disabled = true;
    button.textContent = "Preparing the zip…";
    try {
      const zip = await Lightbox.api(`${path}/zip`, { method: "POST" });
      location.assign(zip.url);
    } catch (error) {
      Lightbox.show($("page-error"), error.message);
    } finally {
      button.disabled = false;
      button.textContent = "Download all (zip)";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!Lightbox.token()) return;
    $("download-zip").addEventListener("click", downloadAll);
    poll();
  });
})();
