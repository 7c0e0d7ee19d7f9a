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
        <details class="shot-details" hidden>
          <summary>Checks and compliance</summary>
          <p class="check"></p>
          <ul class="presets"></ul>
        </details>
      </div>`;
    item.querySelector(".title").textContent = shotTitle(shot);
    return item;
  }

  // What the product check measured, in words a shop owner can weigh.
  const MEASURES = {
    delta_e: (v) => `colour ΔE2000 ${v.toFixed(1)}`,
    matched_share: (v) => `product features found again ${Math.round(v * 100)} %`,
    product_scale: (v) => `product scale ${v.toFixed(2)}`,
    faces: (v) => `faces ${Math.round(v)}`,
  };

  function checkLine(shot) {
    const measured = Object.entries(MEASURES)
      .filter(([key]) => key in shot.check_measures)
      .map(([key, words]) => words(shot.check_measures[key]));
    const verdict = shot.check_passed === false
      ? `Product check failed: ${(shot.check_reasons || []).join("; ")}.`
      : "Product check passed.";
    return measured.length ? `${verdict} ${measured.join(", ")}.` : verdict;
  }

  function presetEntry(shot, presetId) {
    const item = document.createElement("li");
    const report = shot.compliance_reports[presetId];
    const link = document.createElement("a");
    link.href = shot.downloads[presetId];
    link.textContent = `Download for ${presetId}`;
    link.setAttribute("aria-label", `Download ${shotTitle(shot)} for ${presetId}`);
    item.append(link);
    if (!report) return item;
    const unmet = report.rules.filter((rule) => !rule.passed && rule.severity === "error");
    const verdict = document.createElement("p");
    verdict.className = "compliance-verdict";
    verdict.textContent = report.passed
      ? `${presetId}: every rule met.`
      : `${presetId}: ${unmet.length} rule${unmet.length === 1 ? "" : "s"} not met.`;
    const rules = document.createElement("ul");
    rules.className = "rules";
    rules.replaceChildren(...report.rules.map((rule) => {
      const line = document.createElement("li");
      const state = rule.passed ? "met" : rule.severity === "warning" ? "note" : "not met";
      line.className = `rule rule-${state.replace(" ", "-")}`;
      line.textContent = `${state}: ${rule.rule} (${rule.detail})`;
      return line;
    }));
    item.append(verdict, rules);
    return item;
  }

  function showDetails(item, shot) {
    const details = item.querySelector(".shot-details");
    if (shot.phase !== "done" || !details.hidden) return;  // filled once, when delivered
    details.querySelector(".check").textContent = checkLine(shot);
    details.querySelector(".presets").replaceChildren(
      ...Object.keys(shot.outputs).map((presetId) => presetEntry(shot, presetId)));
    details.hidden = false;
  }

  function money(value) {
    return value < 0.01 ? `$${value.toFixed(4)}` : `$${value.toFixed(2)}`;
  }

  function showFiles(job) {
    const files = $("job-files");
    if (job.manifest_url) {
      $("job-manifest").href = job.manifest_url;
      $("job-manifest").hidden = false;
    }
    if (job.contact_sheet_url) {
      $("job-sheet").href = job.contact_sheet_url;
      $("job-sheet").hidden = false;
    }
    const costs = job.costs;
    $("job-costs").textContent = costs
      ? `Cost to make: Replicate ${money(costs.replicate_usd)}, AWS about ` +
        `${money(costs.aws_usd)}; charged ${costs.credits_charged} credits ` +
        `(${money(costs.credits_value_usd)}).`
      : "";
    files.hidden = !(job.manifest_url || job.contact_sheet_url || costs);
  }

  function showShot(item, shot) {
    showDetails(item, shot);
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
    showFiles(job);
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
    showFiles(job);
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
