// The local checkout: "Pay" has the server deliver the signed checkout.session.completed
// Stripe would send to the webhook, then goes home to show the new balance.
"use strict";

(() => {
  async function pay() {
    const button = document.getElementById("pay");
    button.disabled = true;
    button.textContent = "Paying…";
    try {
      const packId = document.getElementById("checkout").dataset.packId;
      await Lightbox.api("/api/checkout/local", { method: "POST", body: { pack_id: packId } });
      location.assign("/?checkout=done");
    } catch (error) {
      Lightbox.show(document.getElementById("pay-error"), error.message);
      button.disabled = false;
      button.textContent = "Pay";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("pay");
    button.addEventListener("click", pay);
    button.disabled = false;  // ready: it starts disabled so no click goes unheard
  });
})();
