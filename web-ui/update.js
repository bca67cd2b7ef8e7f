// The System update card: the running version, a signed bundle uploaded (or downloaded
// from the configured address) and checked before anything is written, Install (the
// password again, KEY2 on a box with keys), the progress, the restart, and how the last
// update ended.

import { $, api, busy, el, fullTime, setText, showError } from "./ui.js";

let restartingTo = null;   // the version the box restarts into, once Install went through

/// [what is going on, tone].
function describe(state) {
  switch (state.state) {
    case "unavailable":
      return ["Updates are not available on this system (no A/B slots): flash the new SD-card image instead.", "warn"];
    case "idle": return ["Up to date as far as the box knows. Install an update from a file or download it.", "ok"];
    case "checking": return ["Checking the bundle's signature and contents…", "warn"];
    case "ready": return [`Version ${state.bundle.version} is checked and ready to install.`, "ok"];
    case "waiting_for_key": return [`Press KEY2 on the box to install ${state.version}.`, "warn"];
    case "installing": return [`Installing ${state.version}: ${state.message} (${state.percent}%)`, "warn"];
    case "restarting":
      return [`Version ${state.version} is written. The box stops in order and restarts into it by itself: this page comes back in a few minutes.`, "warn"];
    case "proving":
      return [`The box runs ${state.version} for the first time. It keeps it once ${state.waiting_for.length ? state.waiting_for.join(", ") : "everything"} ${state.waiting_for.length === 1 ? "works" : "work"}; otherwise it goes back by itself.`, "warn"];
    case "giving_up": return [`${state.reason} The box restarts into the previous version now.`, "bad"];
    case "failed": return [state.message, "bad"];
    default: return [state.state, "warn"];
  }
}

export function render(status) {
  const update = status.update;
  setText("update-version", update.running_version);
  setText("update-slot", update.slot || "–");
  const [words, tone] = describe(update.state);
  const line = $("update-state");
  line.textContent = words;
  line.className = `state-line ${tone}`;
  const installing = update.state.state === "installing";
  $("update-progress").hidden = !installing;
  if (installing) $("update-progress").value = update.state.percent;
  if (update.state.state === "restarting") restartingTo = update.state.version;
  if (["failed", "idle", "ready"].includes(update.state.state)) restartingTo = null;
  const open = !["unavailable", "installing", "restarting", "proving", "giving_up"].includes(update.state.state);
  $("update-choose").hidden = !open;
  const bundle = update.state.state === "ready" ? update.state.bundle : null;
  $("update-bundle").hidden = !bundle;
  if (bundle) {
    setText("update-bundle-version", bundle.version);
    setText("update-bundle-signer", `${bundle.signer} (signature verified)`);
    setText("update-bundle-size", `${(bundle.size / 1e6).toFixed(1)} MB`);
    setText("update-bundle-notes", bundle.notes || "–");
  }
  renderResult(update);
}

function renderResult(update) {
  const box = $("update-result");
  const result = update.last_result;
  box.hidden = !result;
  if (!result) return;
  const text = result.kind === "updated" ?
    `Updated to ${result.version} (from ${result.from}) on ${fullTime(result.at)}: bitcoind, Lightning and the backup proved themselves on it.` :
    `The update to ${result.version} did not start; you are back on ${result.back_on} (${fullTime(result.at)}). Reason: ${result.reason} Your channels, wallet, chain and settings did not change.`;
  box.className = result.kind === "updated" ? "success" : "error";
  box.replaceChildren(el("span", {}, text));
  if (!update.last_result_seen) {
    const dismiss = el("button", { type: "button", class: "secondary" }, "OK");
    dismiss.addEventListener("click", () => api("POST", "/api/system/update/dismiss", {}));
    box.append(" ", dismiss);
  }
}

/// While the box restarts into the new version the page cannot reach it: say so instead
/// of a connection error.
export function unreachable() {
  if (!restartingTo) return false;
  setText("update-state", `Restarting into ${restartingTo}… this page comes back by itself.`);
  return true;
}

async function upload(button) {
  const file = $("update-file").files[0];
  showError($("update-error"), null);
  if (!file) {
    showError($("update-error"), { data: { error: "Choose the bundle file first (plugnode-….raucb)." } });
    return;
  }
  await busy(button, "Uploading and checking…", async () => {
    let answer;
    try {
      const response = await fetch("/api/system/update/bundle", {
        method: "POST",
        cache: "no-store",
        headers: { "Content-Type": "application/octet-stream" },
        body: file,
      });
      let data = null;
      try { data = await response.json(); } catch (_) { /* not JSON */ }
      answer = { ok: response.ok, status: response.status, data };
    } catch (err) {
      answer = { ok: false, status: 0, data: { error: `The upload broke off (${err.message}): try again.` } };
    }
    if (!answer.ok) showError($("update-error"), answer);
  });
}

async function download(button) {
  showError($("update-error"), null);
  await busy(button, "Downloading and checking…", async () => {
    const answer = await api("POST", "/api/system/update/download", {});
    if (!answer.ok) showError($("update-error"), answer);
  });
}

async function install(button, status) {
  showError($("update-error"), null);
  const keys = status && status.display && status.display.has_keys;
  const note = $("update-note");
  note.textContent = keys ? "Press KEY2 on the box to install (KEY3 refuses)." : "";
  await busy(button, "Installing…", async () => {
    const answer = await api("POST", "/api/system/update/install", {});
    note.textContent = answer.ok ? answer.data.message : "";
    if (!answer.ok) {
      showError($("update-error"), answer);
      return;
    }
    // The box may be gone before the next status shows "restarting" (a fast write).
    restartingTo = answer.data.version;
    setText("update-state", `Installing ${restartingTo}…`);
  });
}

export function init(getStatus) {
  $("update-upload").addEventListener("click", (event) => upload(event.target));
  $("update-download").addEventListener("click", (event) => download(event.target));
  $("update-install").addEventListener("click", (event) => install(event.target, getStatus()));
}

