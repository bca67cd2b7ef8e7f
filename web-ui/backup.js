// The Channel backup card: what the USB stick's state means for the user's money, the last
// backup, Eject, Prepare (formatting an empty stick, after an explicit question), failures
// with what to do, and in the demo the buttons that plug its stick (a folder) in and out.

import { $, ago, api, busy, errorText, fullTime, groupDigits, setText, showError } from "./ui.js";

let hooks = null;
let lastState = null;     // the backup state shown, to notice changes
// The eject's "you can pull it out" stays until the stick is pulled or used again. A status
// fetched before the eject finished may arrive after its answer and still say "mirroring":
// only a change after "safe to remove" was seen ends the message.
let ejectMessage = "none";  // "none", "shown" (waiting for safe_to_remove), "confirmed"
let demo = null;          // null: not asked yet; false: not the demo; true: the demo
let demoAsking = false;
let stickLabel = "";      // the stick that asks to be prepared

const MODE_WORDS = {
  "keep-attached": "Keep attached (live mirror)",
  snapshot: "Snapshot, then eject",
};

/// [state label, tone, what it means for the user's money].
function describe(b) {
  const mirror = b.mode !== "snapshot";
  const when = ago(b.last_success);
  const state = b.state.state;
  if (hooks.hasWallet() === false && (state === "no_stick" || state === "disabled")) {
    return ["Not started", "warn",
      "Backups start once the wallet is set up. A stick that holds a backup of this box " +
      "can bring it back: choose “Restore from a USB backup” above."];
  }
  switch (state) {
    case "mirroring":
      return ["Backed up", "ok",
        "Every channel update is on the stick before it counts. If the SD card fails, this " +
        "stick and your 24 words bring your channels back. Press Eject before you pull it out."];
    case "writing":
      return ["Writing…", "warn", "Copying the channel state to the stick: leave it in."];
    case "safe_to_remove":
      return mirror ?
        ["Safe to remove", "ok",
          "The stick is unmounted: you can pull it out. While no stick is in, channel " +
          "updates are only on the SD card: plug it in again soon."] :
        ["Backup OK: safe to remove", "ok",
          "The backup is written, read back and checked, and the stick is unmounted: pull it " +
          "out and keep it somewhere safe. Plug it in again after payments to bring it up to date."];
    case "no_stick":
      if (mirror || !b.last_success) {
        return ["Only on the SD card", "bad",
          "Your channel state is only on the SD card: plug a USB stick in. If the card fails " +
          "without a backup, the money in your channels can be lost."];
      }
      return ["No stick plugged in", "warn",
        `The last backup is from ${when}. Channel updates since then are only on the SD ` +
        "card: plug the stick in after payments to bring it up to date."];
    case "needs_confirmation":
      return ["Needs your OK", "warn",
        "A stick is plugged in that plugnode can prepare for backups, once you agree. Until " +
        "then, channel updates are only on the SD card."];
    case "failed":
      return ["Failed", "bad", ""];
    case "disabled":
      return ["Off", "warn",
        "Channel updates are only on the SD card. Backups are turned off in the settings " +
        "(backup.enabled), or start in a moment when the wallet was just set up."];
    default:
      return [b.state.state, "warn", ""];
  }
}

/// What to do about a failure, by what the box said.
function whatToDo(message) {
  const m = message.toLowerCase();
  if (m.includes("full")) {
    return "Make room on the stick (delete files you do not need) or use a bigger one; " +
      "plugnode tries again by itself.";
  }
  if (m.includes("read-only") || m.includes("cannot tell") || m.includes("damaged") ||
      m.includes("corrupt")) {
    return "Try another stick. An empty stick can be prepared for backups here; plugnode " +
      "never formats a stick that holds files.";
  }
  if (m.includes("pulled out") || m.includes("unmounted")) {
    return "Plug the stick in again (or another one): plugnode copies all channel state to " +
      "it at once. Press Eject before pulling it out next time.";
  }
  return "Pull the stick out and plug it in again, or try another stick. plugnode tries a " +
    "stick that stays plugged in again every few seconds.";
}

export function render(status) {
  const b = status.backup;
  const [label, tone, meaning] = describe(b);
  const state = $("backup-state");
  state.textContent = label;
  state.className = `state ${tone}`;
  state.dataset.state = b.state.state;
  $("backup-meaning").textContent = meaning;
  $("backup-meaning").hidden = meaning === "";

  const failed = b.state.state === "failed";
  $("backup-failure").hidden = !failed;
  if (failed) {
    $("backup-failure-message").textContent = b.state.message;
    $("backup-failure-todo").textContent = whatToDo(b.state.message);
  }

  const asking = b.state.state === "needs_confirmation";
  $("backup-confirm").hidden = !asking;
  if (asking) {
    stickLabel = b.state.stick;
    $("backup-confirm-reason").textContent = b.state.reason;
    $("backup-confirm-stick").textContent = `Stick: ${b.state.stick}`;
  } else if ($("prepare-dialog").open) {
    $("prepare-dialog").close();
  }

  setText("backup-mode", MODE_WORDS[b.mode] || b.mode || null);
  const last = $("backup-last");
  last.textContent = b.last_success ? ago(b.last_success) : "never";
  last.title = fullTime(b.last_success);
  setText("backup-generation", b.generation === null ? null : groupDigits(b.generation));
  setText("backup-stick", b.stick_id);

  const ejectable = b.state.state === "mirroring" || b.state.state === "writing";
  $("backup-eject").hidden = !ejectable;
  if (b.state.state !== lastState) {
    // A new state: what an earlier action said no longer applies.
    if (b.state.state === "safe_to_remove") {
      if (ejectMessage === "shown") ejectMessage = "confirmed";
    } else if (lastState !== null && ejectMessage !== "shown") {
      $("backup-result").hidden = true;
      ejectMessage = "none";
    }
    if (lastState !== null) showError($("backup-error"), null);
    lastState = b.state.state;
  }
  if (demo === null && !demoAsking) askDemo();
  else if (demo) refreshDemo();
}

// --- eject -----------------------------------------------------------------------------

async function eject(button) {
  showError($("backup-error"), null);
  $("backup-result").hidden = true;
  ejectMessage = "none";
  const answer = await busy(button, "Ejecting…", () => api("POST", "/api/backup/eject", {}));
  if (!answer.ok) {
    showError($("backup-error"), answer);
    return;
  }
  $("backup-result").textContent = answer.data.message;
  $("backup-result").hidden = false;
  ejectMessage = lastState === "safe_to_remove" ? "confirmed" : "shown";
  hooks.refresh();
}

// --- preparing an empty stick ------------------------------------------------------------

function askPrepare() {
  showError($("prepare-error"), null);
  $("prepare-stick").textContent = `Stick: ${stickLabel}`;
  $("prepare-dialog").showModal();
}

async function prepare(button) {
  showError($("prepare-error"), null);
  const answer = await busy(button, "Formatting…", () => api("POST", "/api/backup/prepare", {}));
  if (!answer.ok) {
    showError($("prepare-error"), answer);
    return;
  }
  $("prepare-dialog").close();
  hooks.refresh();
}

// --- the demo's stick ----------------------------------------------------------------------

async function askDemo() {
  demoAsking = true;
  const answer = await api("GET", "/api/demo/stick");
  demoAsking = false;
  if (answer.status === 401 || answer.status === 0) return; // ask again later
  demo = answer.ok;
  $("demo-stick").hidden = !demo;
  if (demo) renderDemo(answer.data.inserted);
}

let demoRefreshing = false;

async function refreshDemo() {
  if (demoRefreshing) return;
  demoRefreshing = true;
  const answer = await api("GET", "/api/demo/stick");
  demoRefreshing = false;
  if (answer.ok) renderDemo(answer.data.inserted);
}

function renderDemo(inserted) {
  $("demo-stick-state").textContent = inserted ? "It is plugged in." : "It is pulled out.";
  $("demo-stick-in").hidden = inserted;
  $("demo-stick-out").hidden = !inserted;
}

async function plugDemo(button, inserted) {
  showError($("demo-stick-error"), null);
  const answer = await busy(button, inserted ? "Plugging in…" : "Pulling out…", () =>
    api("POST", "/api/demo/stick", { inserted }));
  if (!answer.ok) {
    $("demo-stick-error").textContent = errorText(answer);
    return;
  }
  renderDemo(answer.data.inserted);
  hooks.refresh();
}

/// Whether this is `plugnode demo`: true, false, or null while not known yet.
export function isDemo() {
  return demo;
}

/// Logging out: ask again whether this is the demo after the next log-in.
export function forget() {
  demo = null;
  $("demo-stick").hidden = true;
}

export function init(h) {
  hooks = h;
  $("backup-eject").addEventListener("click", (e) => eject(e.currentTarget));
  $("backup-prepare").addEventListener("click", askPrepare);
  $("prepare-confirm").addEventListener("click", (e) => prepare(e.currentTarget));
  $("prepare-cancel").addEventListener("click", () => $("prepare-dialog").close());
  $("demo-stick-in").addEventListener("click", (e) => plugDemo(e.currentTarget, true));
  $("demo-stick-out").addEventListener("click", (e) => plugDemo(e.currentTarget, false));
}
