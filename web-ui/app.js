// plugnode dashboard: logs in, polls /api/status and hands it to each area of the page.
// One module per area (wallet setup, Lightning, channels, payments, wallet apps, backup); no
// framework, no build step.

import { $, api, busy, errorText, setText } from "./ui.js";
import * as wallet from "./wallet.js";
import * as lightning from "./lightning.js";
import * as channels from "./channels.js";
import * as payments from "./payments.js";
import * as backup from "./backup.js";
import * as pairing from "./pairing.js";
import * as update from "./update.js";

const POLL_MS = 2000;

function humanBytes(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes, unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit++; }
  return `${value.toFixed(value < 10 && unit > 0 ? 1 : 0)} ${units[unit]}`;
}

const BITCOIND_WORDS = {
  not_started: ["Not started yet", "warn"],
  starting: ["Starting", "warn"],
  syncing: ["Syncing the block chain", "warn"],
  ready: ["Ready", "ok"],
  restarting: ["Restarting", "warn"],
  crash_loop: ["Stopped: keeps crashing", "bad"],
  insufficient_disk: ["Not started: disk too small", "bad"],
  failed: ["Failed", "bad"],
  stopping: ["Stopping", "warn"],
  stopped: ["Stopped", "warn"],
};

function renderBitcoind(b) {
  const [words, tone] = BITCOIND_WORDS[b.state.state] || [b.state.state, "warn"];
  let text = words;
  if (b.state.state === "starting" && b.state.message) text += ` (${b.state.message})`;
  if (b.state.state === "restarting") text += ` in ${b.state.retry_in_secs} s`;
  const el = $("bitcoind-state");
  el.textContent = text;
  el.className = `state ${tone}`;
  const chain = b.chain;
  const percent = chain ? Math.floor(Math.min(1, chain.verification_progress) * 100) : 0;
  $("sync-bar").firstElementChild.style.width = `${percent}%`;
  $("sync-bar").setAttribute("aria-valuenow", percent);
  setText("blocks", chain && chain.blocks.toLocaleString());
  setText("headers", chain && chain.headers.toLocaleString());
  setText("network", b.network);
  setText("connections", chain && chain.connections);
  setText("pruned", chain && (chain.pruned ? "yes" : "no"));
  setText("restarts", b.restarts);
}

function renderAlerts(alerts, status) {
  const box = $("alerts");
  box.replaceChildren();
  for (const alert of alerts) {
    const div = document.createElement("div");
    div.className = `alert ${alert.severity}`;
    div.dataset.kind = alert.kind;
    const title = document.createElement("h3");
    title.textContent = alert.title;
    const message = document.createElement("p");
    message.textContent = alert.message;
    div.append(title, message);
    const state = status.bitcoind.state;
    if (alert.kind === "bitcoind_crash_loop" && state.last_lines && state.last_lines.length) {
      const pre = document.createElement("pre");
      pre.textContent = state.last_lines.join("\n");
      div.append(pre);
    }
    if (["bitcoind_crash_loop", "insufficient_disk", "bitcoind_failed"].includes(alert.kind)) {
      const retry = document.createElement("button");
      retry.textContent = "Retry";
      retry.addEventListener("click", async () => {
        retry.disabled = true;
        await api("POST", "/api/bitcoind/retry", {});
        refresh();
      });
      div.append(retry);
    }
    box.append(div);
  }
}

function render(status) {
  $("phase").textContent = status.phase.replace("_", " ");
  renderAlerts(status.alerts, status);
  wallet.render(status);
  lightning.render(status);
  channels.render(status);
  payments.render(status);
  pairing.render(status);
  renderBitcoind(status.bitcoind);
  backup.render(status);
  update.render(status);
  const sys = status.system;
  setText("disk", sys.data_disk_free_bytes === null ? null :
    `${humanBytes(sys.data_disk_free_bytes)} of ${humanBytes(sys.data_disk_total_bytes)}`);
  // The system release the box runs (its slot), else plugnode's own version.
  setText("version", (status.update && status.update.running_version) || status.version);
  setText("https-url", sys.https_url);
  // Four lines of eight bytes, as the box's screen shows them.
  const bytes = (sys.ca_fingerprint || "").split(":");
  const lines = [];
  for (let i = 0; i < bytes.length; i += 8) lines.push(bytes.slice(i, i + 8).join(":"));
  setText("ca-fingerprint", sys.ca_fingerprint ? lines.join("\n") : null);
}

// --- log-in gate -------------------------------------------------------------------------

function showGate(which) {
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("gate").hidden = false;
  $("setup-form").hidden = which !== "setup";
  $("login-form").hidden = which !== "login";
  const first = which === "setup" ? $("setup-code") : $("login-password");
  if (document.activeElement === document.body) first.focus();
}

function showDashboard() {
  $("gate").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
}

$("setup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const password = $("setup-password").value;
  if (password !== $("setup-repeat").value) {
    $("setup-error").textContent = "The two passwords differ: type the same one twice.";
    return;
  }
  const answer = await api("POST", "/api/setup/password",
    { setup_code: $("setup-code").value, password });
  if (!answer.ok) {
    $("setup-error").textContent = errorText(answer);
    return;
  }
  $("setup-error").textContent = "";
  refresh();
});

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const unlock = $("login-unlock").value.trim();
  const answer = await api("POST", "/api/login",
    { password: $("login-password").value, unlock_code: unlock || null });
  if (!answer.ok) {
    $("login-error").textContent = errorText(answer);
    // Waiting (429), or a wrong unlock code: offer the way in from the box's screen.
    const kind = answer.data && answer.data.kind;
    if (answer.status === 429 || kind === "wrong_unlock_code") $("login-locked").hidden = false;
    return;
  }
  $("login-error").textContent = "";
  $("login-password").value = "";
  $("login-unlock").value = "";
  $("login-unlock-note").textContent = "";
  $("login-locked").hidden = true;
  refresh();
});

$("login-unlock-ask").addEventListener("click", async () => {
  const answer = await busy($("login-unlock-ask"), "Asking the box…",
    () => api("POST", "/api/login/unlock-code", {}));
  $("login-unlock-note").textContent = answer.ok ? answer.data.message : errorText(answer);
  if (answer.ok) $("login-unlock").focus();
});

async function loggedOut() {
  wallet.forget();
  backup.forget();
  pairing.forget();
  refresh();
}

$("logout").addEventListener("click", async () => {
  await api("POST", "/api/logout", {});
  loggedOut();
});

$("logout-everywhere").addEventListener("click", async () => {
  if (!confirm("Log out on every device, this one too?")) return;
  await api("POST", "/api/logout-everywhere", {});
  loggedOut();
});

$("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const next = $("password-new").value;
  $("password-result").hidden = true;
  if (next !== $("password-repeat").value) {
    $("password-error").textContent = "The two new passwords differ: type the same one twice.";
    return;
  }
  const answer = await api("POST", "/api/password",
    { old_password: $("password-old").value, new_password: next });
  if (!answer.ok) {
    $("password-error").textContent = errorText(answer);
    return;
  }
  $("password-error").textContent = "";
  for (const id of ["password-old", "password-new", "password-repeat"]) $(id).value = "";
  $("password-result").textContent = answer.data.message;
  $("password-result").hidden = false;
});

// --- screen mirror and keys ----------------------------------------------------------------

let lastScreen = null;

function renderScreen(display) {
  $("screen-card").hidden = !display;
  if (!display) return;
  $("keys").hidden = !display.has_keys;
  // A new picture only when the screen state moved (the PNG is tiny either way).
  const stamp = `${display.screen}-${Date.now() >> 11}`;
  if (stamp !== lastScreen) {
    lastScreen = stamp;
    const src = `/api/display/frame.png?t=${Date.now()}`;
    for (const img of document.querySelectorAll("img.mirror:not([hidden])")) img.src = src;
  }
}

/// Presses a key of the box's screen (the mirror's keys, and the wallet's page buttons).
export async function pressKey(key, long = false) {
  const answer = await api("POST", "/api/display/key", { key, long });
  setTimeout(() => { lastScreen = null; refresh(); }, 300);
  return answer;
}

for (const button of document.querySelectorAll("#keys button")) {
  button.addEventListener("click", () =>
    pressKey(Number(button.dataset.key), button.dataset.long === "true"));
}

// --- shutting down -------------------------------------------------------------------------

$("shutdown").addEventListener("click", async () => {
  if (!confirm("Shut the box down? bitcoind and the Lightning node stop cleanly; " +
               "unplug only when the screen says \"safe to unplug\".")) return;
  const answer = await api("POST", "/api/system/shutdown", { power_off: true });
  $("shutdown-note").textContent = answer.ok ? answer.data.message : errorText(answer);
  $("shutdown").disabled = answer.ok;
});

// --- the loop ------------------------------------------------------------------------------

let refreshing = false;
let lastStatus = null;

export async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const answer = await api("GET", "/api/status");
    if (answer.status === 401) {
      pairing.forget(); // a pairing code on screen leaves with the session
      showGate(answer.data && answer.data.setup_required ? "setup" : "login");
      $("connection").textContent = "";
      return;
    }
    if (answer.status === 0 && update.unreachable()) {
      $("connection").textContent = "The box is restarting into its update.";
      return;
    }
    if (!answer.ok) {
      $("connection").textContent = answer.status === 0 ? errorText(answer) :
        `The box did not answer as expected: ${errorText(answer)}`;
      return;
    }
    showDashboard();
    lastStatus = answer.data;
    render(answer.data);
    renderScreen(answer.data.display);
    $("connection").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    console.error(err);
    $("connection").textContent = `This page hit an error (${err.message}); reload it.`;
  } finally {
    refreshing = false;
  }
}

wallet.init({ pressKey, refresh, restored: lightning.showRestored });
lightning.init({ refresh });
backup.init({ refresh, hasWallet: wallet.hasWallet });
channels.init({ refresh });
payments.init();
pairing.init({ refresh, pressKey, isDemo: backup.isDemo });
update.init(() => lastStatus);
refresh();
setInterval(refresh, POLL_MS);
