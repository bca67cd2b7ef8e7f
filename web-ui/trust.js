// The trust page (trust.html). A device that already trusts the box's certificate
// authority completes the TLS handshake of this probe; then `/` goes straight on to the
// secure page, and `/trust` says so. Otherwise the page stays and says how to trust it.
const secure = document.getElementById("secure-link").href;

fetch(new URL("/api/health", secure), { mode: "no-cors", cache: "no-store" })
  .then(() => {
    document.body.dataset.probe = "trusted";
    if (document.body.dataset.forward === "yes") {
      location.replace(secure);
    } else {
      document.getElementById("trusted").hidden = false;
    }
  })
  .catch(() => {
    // Not trusted yet (or the secure port is unreachable): the instructions stay.
    document.body.dataset.probe = "untrusted";
  });
