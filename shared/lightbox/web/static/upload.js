// Choosing a photo and posting it straight to the bucket with the API's upload ticket:
// what the new-shoot and tools pages share. The page holds #photo (the file input),
// #drop, #chosen, and #upload-status with #upload-progress and #upload-percent.
"use strict";

const LightboxUpload = (() => {
  const $ = (id) => document.getElementById(id);
  const HEIC = { heic: "image/heic", heif: "image/heif" };

  // Some browsers give HEIC files no type; the bucket's policy wants image/*.
  function contentType(file) {
    if (file.type) return file.type;
    return HEIC[file.name.split(".").pop().toLowerCase()] || "";
  }

  function photoProblem(file) {
    if (!file) return "Choose a photo of your product.";
    if (!contentType(file).startsWith("image/")) return `${file.name} is not an image.`;
    const limit = Lightbox.config.maxUploadBytes;
    if (file.size > limit) {
      return `${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB; ` +
        `the limit is ${Math.floor(limit / 2 ** 20)} MB.`;
    }
    return null;
  }

  // `choose(file)` gets every file picked or dropped; it says back whether it took it.
  function watchDrops(choose) {
    const drop = $("drop");
    const show = (file) => {
      $("chosen").textContent = choose(file)
        ? `${file.name} (${(file.size / 2 ** 20).toFixed(1)} MB)` : "";
    };
    $("photo").addEventListener("change", (event) => show(event.target.files[0]));
    ["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    }));
    ["dragleave", "drop"].forEach((name) => drop.addEventListener(name, () => {
      drop.classList.remove("over");
    }));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      show(event.dataTransfer.files[0]);
    });
  }

  function postToBucket(ticket, file) {
    const form = new FormData();
    Object.entries(ticket.fields).forEach(([name, value]) => form.append(name, value));
    form.append("Content-Type", contentType(file));
    form.append("file", file);  // S3 ignores every field after the file
    const bar = $("upload-progress");
    $("upload-status").hidden = false;
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open("POST", ticket.url);
      request.upload.onprogress = (event) => {
        if (!event.lengthComputable) return;
        const percent = Math.round((100 * event.loaded) / event.total);
        bar.value = percent;
        $("upload-percent").textContent = `${percent}%`;
      };
      request.onload = () => (request.status < 300 ? resolve() : reject(new Error(
        bucketMessage(request.responseText) || `The upload failed (${request.status}).`)));
      request.onerror = () => reject(new Error("The upload failed: check your connection."));
      request.send(form);
    });
  }

  function bucketMessage(xml) {
    const found = /<Message>([^<]*)<\/Message>/.exec(xml || "");
    return found ? `The upload was refused: ${found[1]}` : "";
  }

  return { photoProblem, watchDrops, postToBucket };
})();
