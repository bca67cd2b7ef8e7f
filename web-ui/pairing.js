// The "Connect a wallet" card: wallet apps (Zeus, Alby Go, BlueWallet, …) paired over Nostr
// Wallet Connect or LNDHub. Add a connection (app, what it may do, budget, expiry); a
// connection that may spend is allowed with KEY2 on the box (or the web password on a box
// without keys); its QR code and URI are shown once; the list shows every connection's
// budget and use, with Revoke. In the demo, an invoice of the demo's peer to try a payment
// from the paired app.
//
// The URI is a secret: it stays in `pending` while the page waits for KEY2 and shows the
// code, and leaves the variable and the page with "Done" (or a refusal, or logging out).

import {
  $, ago, api, busy, copyButton, el, errorText, fullTime, inTime, parseSat, sat, showError,
  showQr, when,
} from "./ui.js";

/// Presets: the name they fill in, the protocols the app speaks (the first is the default),
/// and where in the app the code is scanned.
const PRESETS = {
  zeus: {
    name: "Zeus",
    protocols: ["nwc", "lndhub"],
    where: {
      nwc: "In Zeus: Settings → Connect a wallet → scan this code (a Nostr Wallet Connect code).",
      lndhub: "In Zeus: Settings → Connect a wallet → scan this code (an LNDHub account).",
    },
  },
  "alby-go": {
    name: "Alby Go",
    protocols: ["nwc"],
    where: { nwc: "In Alby Go: Connect wallet → scan this code." },
  },
  bluewallet: {
    name: "BlueWallet",
    protocols: ["lndhub"],
    where: { lndhub: "In BlueWallet: Add wallet → Import wallet → scan this code." },
  },
  nostr: {
    name: "Amethyst / Damus",
    protocols: ["nwc"],
    where: {
      nwc: "In Amethyst or Damus: open the wallet (zap) settings, choose Nostr Wallet Connect " +
        "and scan this code.",
    },
  },
  other: {
    name: "",
    protocols: ["nwc"],
    where: {
      nwc: "In the app, look for Nostr Wallet Connect (NWC) and scan this code, or copy the " +
        "text into it.",
    },
  },
};

const PROTOCOL_NAMES = { nwc: "Nostr Wallet Connect", lndhub: "LNDHub" };
const PROTOCOL_TAGS = { nwc: "NWC", lndhub: "LNDHub" };
const PER = {
  daily: "per day", weekly: "per week", monthly: "per month", yearly: "per year", never: "in total",
};
const STATE_WORDS = {
  active: ["active", "ok"],
  waiting_for_key: ["waiting for KEY2", "warn"],
  expired: ["expired", "bad"],
};
/// How long the box waits for KEY2 before it refuses by itself.
const KEY_WAIT_SECS = 120;
const POLL_MS = 1000;

let hooks = null;
let latest = null;        // the last status
let overview = null;      // GET /api/pairing; null: not asked yet
let off = false;          // pairing is turned off on this box
let asking = false;
let step = "idle";        // idle | form | wait | refused | show
let pending = null;       // { id, uri, app, preset, protocol, budgetText, since } (the secret)
let pollTimer = null;
let connections = [];
let listing = false;
let lastShown = "";
const confirming = new Set();  // connections whose Revoke asks "sure?"
const itemErrors = new Map();  // connection id → a failed revoke's answer
let demoInvoice = "";

export function render(status) {
  latest = status;
  if (overview === null && !off && !asking) askOverview();
  if (overview === null) return;
  $("pairing-lightning-note").hidden = status.lightning.state.state === "running";
  if (step === "show") renderReach();
  renderWaitScreen();
  $("pairing-demo").hidden = hooks.isDemo() !== true;
  refreshList();
}

// --- what the box serves ---------------------------------------------------------------------

async function askOverview() {
  asking = true;
  const answer = await api("GET", "/api/pairing");
  asking = false;
  if (answer.status === 401 || answer.status === 0) return; // ask again at the next poll
  $("pairing-card").hidden = false;
  if (!answer.ok) {
    if (answer.data && answer.data.kind === "pairing_off") {
      off = true;
      $("pairing-off").textContent = errorText(answer);
      $("pairing-off").hidden = false;
      $("pairing-intro").hidden = true;
      $("pairing-add-toggle").hidden = true;
      $("pairing-empty").hidden = true;
    } else {
      showError($("pairing-list-error"), answer); // and ask again at the next poll
    }
    return;
  }
  showError($("pairing-list-error"), null);
  overview = answer.data;
  offerPresets();
  if (latest) render(latest);
}

/// Offers only the apps whose protocol the box serves, and says what is off.
function offerPresets() {
  const served = (p) => Boolean(overview.protocols[p]);
  const select = $("pairing-preset");
  for (const option of select.options) {
    const usable = PRESETS[option.value].protocols.some(served);
    option.hidden = !usable;
    option.disabled = !usable;
  }
  const offNotes = [];
  if (!served("nwc")) {
    offNotes.push("Nostr Wallet Connect is off on this box ([pairing] relay or relays in the " +
      "config), so only LNDHub apps are offered.");
  }
  if (!served("lndhub")) {
    offNotes.push("LNDHub is off on this box ([pairing] lndhub in the config), so BlueWallet " +
      "is not offered.");
  }
  const none = !served("nwc") && !served("lndhub");
  $("pairing-preset-off").textContent = offNotes.join(" ");
  $("pairing-preset-off").hidden = offNotes.length === 0;
  $("pairing-add-toggle").hidden = none;
  if (none) {
    $("pairing-off").textContent = "Neither Nostr Wallet Connect nor LNDHub runs on this box: " +
      "turn one on in the config ([pairing] relay, relays or lndhub).";
    $("pairing-off").hidden = false;
  }
  resetForm();
}

// --- the form ----------------------------------------------------------------------------------

function preset() {
  return PRESETS[$("pairing-preset").value] || PRESETS.other;
}

function servedProtocols() {
  return preset().protocols.filter((p) => overview && overview.protocols[p]);
}

function applyPreset() {
  const p = preset();
  $("pairing-app").value = p.name;
  const served = servedProtocols();
  $("pairing-protocols").hidden = served.length < 2;
  $("pairing-protocol-nwc").checked = served[0] === "nwc";
  $("pairing-protocol-lndhub").checked = served[0] === "lndhub";
  if (p.name === "" && !$("pairing-form").hidden) $("pairing-app").focus();
}

function chosenProtocol() {
  const served = servedProtocols();
  if (served.length > 1) {
    return document.querySelector("input[name=pairing-protocol]:checked").value;
  }
  return served[0];
}

function spending() {
  return $("pairing-spend").checked;
}

function renderForm() {
  const spend = spending();
  $("pairing-budget-row").hidden = !spend;
  $("pairing-max-row").hidden = !spend;
  const needsPassword = spend && overview !== null && overview.spending_needs_password;
  $("pairing-password-row").hidden = !needsPassword;
  if (!needsPassword) {
    $("pairing-password").value = "";
    showError($("pairing-password-error"), null);
  }
  const note = $("pairing-confirm-note");
  note.hidden = !spend;
  note.textContent = needsPassword ?
    "This box has no keys to press: allowing an app to spend takes the web password again." :
    "You allow it on the box: once you press Create, the box's screen asks, and KEY2 allows.";
}

function showStep(name) {
  step = name;
  $("pairing-form").hidden = name !== "form";
  $("pairing-wait").hidden = name !== "wait";
  $("pairing-refused").hidden = name !== "refused";
  $("pairing-show").hidden = name !== "show";
  $("pairing-add-toggle").setAttribute("aria-expanded", name === "form");
  $("pairing-add-toggle").disabled = name === "wait" || name === "show";
  renderWaitScreen();
}

function toggleForm() {
  if (step === "form") {
    showStep("idle");
    return;
  }
  showError($("pairing-error"), null);
  showError($("pairing-password-error"), null);
  $("pairing-result").hidden = true;
  showStep("form");
  renderForm();
  $("pairing-preset").focus();
}

async function create(event) {
  event.preventDefault();
  const error = $("pairing-error");
  const passwordError = $("pairing-password-error");
  showError(error, null);
  showError(passwordError, null);
  $("pairing-result").hidden = true;
  const app = $("pairing-app").value.trim();
  if (app === "") {
    error.textContent = "Give the connection a name, e.g. the app's.";
    $("pairing-app").focus();
    return;
  }
  const protocol = chosenProtocol();
  const body = { app, protocol, permissions: ["receive"], expires_at: null };
  const expiry = $("pairing-expiry").value;
  if (expiry !== "") body.expires_at = Math.floor(Date.now() / 1000) + Number(expiry);
  let budgetText = "";
  if (spending()) {
    body.permissions.push("spend");
    const budget = parseSat($("pairing-budget").value);
    if (budget.error || budget.value === 0) {
      error.textContent = `Budget: ${budget.error || "give the app a budget above 0 sat."}`;
      $("pairing-budget").focus();
      return;
    }
    const max = parseSat($("pairing-max").value, { optional: true });
    if (max.error || max.value === 0) {
      error.textContent = `Limit per payment: ${max.error || "give a limit above 0 sat, or leave it empty."}`;
      $("pairing-max").focus();
      return;
    }
    body.budget_sat = budget.value;
    body.renewal = $("pairing-renewal").value;
    if (max.value !== null) body.max_payment_sat = max.value;
    budgetText = `${sat(budget.value)} ${PER[body.renewal]}`;
    if (!$("pairing-password-row").hidden) {
      const password = $("pairing-password").value;
      if (password === "") {
        passwordError.textContent = "Type the web password to allow this app to spend.";
        $("pairing-password").focus();
        return;
      }
      body.password = password;
    }
  }
  const answer = await busy($("pairing-create"), "Creating…", () =>
    api("POST", "/api/pairing/connections", body));
  $("pairing-password").value = "";
  if (!answer.ok) {
    const kind = answer.data && answer.data.kind;
    if (kind === "needs_password" && overview) {
      // The box has no keys after all: ask for the password.
      overview.spending_needs_password = true;
      renderForm();
    }
    if (kind === "needs_password" || kind === "wrong_password") {
      showError(passwordError, answer);
      $("pairing-password").focus();
    } else {
      showError(error, answer);
    }
    return;
  }
  pending = {
    id: answer.data.id,
    uri: answer.data.uri,
    app,
    preset: $("pairing-preset").value,
    protocol,
    budgetText,
    since: Date.now(),
  };
  if (answer.data.state === "waiting_for_key") startWaiting();
  else showCode();
  refreshList();
  hooks.refresh();
}

// --- waiting for KEY2 ----------------------------------------------------------------------

function startWaiting() {
  showError($("pairing-wait-error"), null);
  $("pairing-wait-text").textContent =
    `Press KEY2 on the box to allow “${pending.app}” to spend up to ${pending.budgetText}. ` +
    "KEY3 refuses; without an answer the box refuses after 2 minutes.";
  showStep("wait");
  renderCountdown();
  $("pairing-wait").scrollIntoView({ block: "nearest" });
  const id = pending.id;
  pollTimer = setTimeout(() => poll(id), POLL_MS);
}

function renderCountdown() {
  if (!pending) return;
  const left = Math.max(0, KEY_WAIT_SECS - Math.floor((Date.now() - pending.since) / 1000));
  $("pairing-wait-left").textContent = left > 0 ?
    `About ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left.` :
    "The box gives up any moment now.";
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

async function poll(id) {
  const current = () => pending !== null && pending.id === id && step === "wait";
  if (!current()) return;
  const answer = await api("GET", `/api/pairing/connections/${encodeURIComponent(id)}`);
  if (!current()) return;
  renderCountdown();
  if (!answer.ok) {
    showError($("pairing-wait-error"), answer);
    if (answer.status === 404) {
      refuse(`“${pending.app}” is gone from the box: it was revoked. Start again to add it.`);
      return;
    }
    pollTimer = setTimeout(() => poll(id), POLL_MS);
    return;
  }
  showError($("pairing-wait-error"), null);
  switch (answer.data.state) {
    case "active":
      showCode();
      refreshList();
      hooks.refresh();
      return;
    case "waiting_for_key":
      pollTimer = setTimeout(() => poll(id), POLL_MS);
      return;
    case "refused":
      refuse(`The box refused “${pending.app}”: KEY3 was pressed, or nobody pressed KEY2 ` +
        "within 2 minutes. Nothing was paired.");
      return;
    default:
      refuse(`“${pending.app}” was ${answer.data.state.replaceAll("_", " ")} before the box ` +
        "allowed it. Nothing was paired.");
  }
}

function refuse(text) {
  stopPolling();
  forgetSecret();
  $("pairing-refused-text").textContent = text;
  showStep("refused");
  refreshList();
}

/// Takes the pending connection back (it would never be allowed now).
async function cancelWaiting(button) {
  if (!pending) return;
  const id = pending.id;
  const answer = await busy(button, "Cancelling…", () =>
    api("DELETE", `/api/pairing/connections/${encodeURIComponent(id)}`, {}));
  if (!answer.ok && answer.status !== 404) {
    showError($("pairing-wait-error"), answer);
    return;
  }
  stopPolling();
  forgetSecret();
  showStep("form");
  renderForm();
  refreshList();
  hooks.refresh();
}

/// The box's screen in the waiting step, and on the simulated panel (the demo) its keys,
/// once the screen asks.
function renderWaitScreen() {
  const display = latest && latest.display;
  const waiting = step === "wait" && Boolean(display);
  const mirror = $("pairing-mirror");
  if (waiting && mirror.hidden) mirror.src = `/api/display/frame.png?t=${Date.now()}`;
  mirror.hidden = !waiting;
  $("pairing-wait-keys").hidden = !(waiting && display.panel === "simulated" &&
    display.has_keys && display.screen === "PairingConfirm");
}

async function pressKey(key, button) {
  showError($("pairing-wait-error"), null);
  const answer = await busy(button, "…", () => hooks.pressKey(key));
  if (!answer.ok) showError($("pairing-wait-error"), answer);
}

// --- the code, once ----------------------------------------------------------------------------

function showCode() {
  stopPolling();
  const p = pending;
  $("pairing-show-title").textContent = `Scan this code with ${p.app}`;
  showQr($("pairing-qr"), p.uri);
  $("pairing-uri").textContent = p.uri;
  const where = (PRESETS[p.preset] || PRESETS.other).where[p.protocol] ||
    `In the app, add a ${PROTOCOL_NAMES[p.protocol]} connection and scan this code.`;
  $("pairing-where").textContent = where;
  $("pairing-on-screen").hidden = !(latest && latest.display);
  $("pairing-once").textContent = "Shown only this once: whoever has this code can use the " +
    `connection${p.budgetText ? ", within its budget" : " to receive"}. Once the app is ` +
    "connected, press Done.";
  renderReach();
  showStep("show");
  $("pairing-show").scrollIntoView({ block: "nearest" });
}

/// Where the phone must be for the connection to work, and on mainnet how to reach it from
/// outside.
function renderReach() {
  if (!pending) return;
  const relays = (latest && latest.pairing && latest.pairing.relays) || overview.relays || [];
  const network = (latest && latest.bitcoind.network) || overview.network;
  const publicRelays = relays.filter((r) => !r.embedded);
  let reach;
  let hint = "";
  if (pending.protocol === "lndhub") {
    reach = "LNDHub answers on the home network only: the phone must be on the home Wi-Fi " +
      "to pay or receive.";
  } else if (publicRelays.length > 0) {
    const names = publicRelays.map((r) => r.url.replace(/^wss?:\/\//, "")).join(", ");
    reach = relays.some((r) => r.embedded) ?
      `Works on the home Wi-Fi and also from outside, through ${names} (end-to-end encrypted).` :
      `Works wherever the phone is online, through ${names} (end-to-end encrypted).`;
    if (!publicRelays.some((r) => r.connected)) reach += " The box does not reach it right now.";
  } else {
    reach = "This connection goes through the box's own relay: the phone must be on the home " +
      "Wi-Fi.";
    if (network === "main") {
      hint = "To pay from outside too, add a public relay to the config, e.g. [pairing] " +
        "relays = [\"wss://relay.getalby.com/v1\"], restart the box and add the connection again.";
    }
  }
  $("pairing-reach").textContent = reach;
  $("pairing-relay-hint").textContent = hint;
  $("pairing-relay-hint").hidden = hint === "";
}

/// The URI leaves the page: the variable, the text, the picture.
function forgetSecret() {
  pending = null;
  $("pairing-uri").textContent = "";
  $("pairing-qr").removeAttribute("src");
}

/// A fresh form for the next connection.
function resetForm() {
  $("pairing-form").reset();
  const select = $("pairing-preset");
  if (select.selectedOptions[0] && select.selectedOptions[0].disabled) {
    const first = [...select.options].find((o) => !o.disabled);
    if (first) select.value = first.value;
  }
  applyPreset();
  renderForm();
}

function done() {
  const app = pending ? pending.app : "The app";
  forgetSecret();
  resetForm();
  showStep("idle");
  $("pairing-result").textContent = `${app} is paired: it is in the list below, where you can revoke it.`;
  $("pairing-result").hidden = false;
  refreshList();
}

// --- the list ------------------------------------------------------------------------------------

async function refreshList() {
  if (listing || overview === null) return;
  listing = true;
  const answer = await api("GET", "/api/pairing/connections");
  listing = false;
  if (!answer.ok) {
    if (answer.status !== 401) showError($("pairing-list-error"), answer);
    return;
  }
  showError($("pairing-list-error"), null);
  connections = answer.data;
  drawList();
}

function drawList() {
  // Redraw on change, and now and then for "3 minutes ago".
  const shown = JSON.stringify([connections, [...confirming], [...itemErrors.keys()],
    Math.floor(Date.now() / 20000)]);
  if (shown === lastShown) return;
  lastShown = shown;
  $("pairing-empty").hidden = connections.length > 0;
  $("pairing-list").replaceChildren(...connections.map(connectionItem));
}

function connectionItem(c) {
  const spend = c.permissions.includes("spend");
  const [stateText, tone] = STATE_WORDS[c.state] || [c.state.replaceAll("_", " "), "warn"];
  const parts = [
    el("div", { class: "connection-head" },
      el("strong", { class: "app" }, c.app),
      el("span", { class: "tag protocol" }, PROTOCOL_TAGS[c.protocol] || c.protocol),
      el("span", { class: `connection-state ${tone}` }, stateText)),
    el("p", { class: "permissions" }, spend ?
      `Receive and spend · budget ${sat(c.budget_sat)} ${PER[c.renewal] || c.renewal}` :
      "Receive only: it cannot spend"),
  ];
  if (spend) {
    const bar = el("div", {
      class: "budget-bar", role: "img",
      "aria-label": `Used ${sat(c.used_sat)} of ${sat(c.budget_sat)}`,
    }, el("div", { class: "used-part" }));
    const share = c.budget_sat > 0 ? Math.min(1, c.used_sat / c.budget_sat) : 0;
    bar.firstChild.style.width = `${share * 100}%`;
    parts.push(bar, el("div", { class: "legend" },
      el("span", { class: "used" }, `Used ${sat(c.used_sat)}`),
      el("span", { class: "left" }, `Left ${sat(c.left_sat)}`)));
  }
  const facts = [];
  if (spend) {
    facts.push(el("span", { class: "renews", title: fullTime(c.renews_at) },
      c.renews_at ? `Renews ${inTime(c.renews_at)}` : "Never renews"));
    if (c.max_payment_sat && c.max_payment_sat < c.budget_sat) {
      facts.push(el("span", { class: "max" }, `At most ${sat(c.max_payment_sat)} a payment`));
    }
  }
  let expiry = "No expiry";
  if (c.expires_at) {
    expiry = c.state === "expired" ? `Expired ${ago(c.expires_at)}` :
      `Expires ${when(c.expires_at)} (${inTime(c.expires_at)})`;
  }
  facts.push(el("span", { class: "expires", title: fullTime(c.expires_at) }, expiry));
  facts.push(el("span", { class: "last-used", title: fullTime(c.last_used_at) },
    `Last used ${ago(c.last_used_at)}`));
  parts.push(el("div", { class: "connection-facts" }, facts));

  const error = el("p", { class: "error", role: "alert" });
  if (itemErrors.has(c.id)) showError(error, itemErrors.get(c.id));
  parts.push(confirming.has(c.id) ?
    el("div", { class: "connection-foot confirm" },
      el("span", { class: "note" }, `Revoke “${c.app}”? It stops working at once.`),
      el("span", { class: "choices" },
        el("button", { type: "button", class: "danger revoke-confirm", onclick: (e) => revoke(c, e.currentTarget) }, "Revoke"),
        el("button", { type: "button", class: "secondary revoke-cancel", onclick: () => askRevoke(c, false) }, "Keep"))) :
    el("div", { class: "connection-foot" },
      el("button", { type: "button", class: "secondary revoke", onclick: () => askRevoke(c, true) }, "Revoke…")),
  error);
  return el("li", { class: "connection", "data-id": c.id, "data-state": c.state }, parts);
}

function askRevoke(c, ask) {
  if (ask) confirming.add(c.id);
  else confirming.delete(c.id);
  itemErrors.delete(c.id);
  drawList();
}

async function revoke(c, button) {
  $("pairing-result").hidden = true;
  const answer = await busy(button, "Revoking…", () =>
    api("DELETE", `/api/pairing/connections/${encodeURIComponent(c.id)}`, {}));
  if (!answer.ok && answer.status !== 404) {
    itemErrors.set(c.id, answer);
    drawList();
    return;
  }
  confirming.delete(c.id);
  itemErrors.delete(c.id);
  connections = connections.filter((x) => x.id !== c.id);
  drawList();
  $("pairing-result").textContent = `“${c.app}” is revoked: it can no longer use this box.`;
  $("pairing-result").hidden = false;
  refreshList();
  hooks.refresh();
}

// --- the demo: an invoice to pay from the app ------------------------------------------------

async function getDemoInvoice(event) {
  event.preventDefault();
  const error = $("pairing-demo-error");
  showError(error, null);
  const amount = parseSat($("pairing-demo-amount").value);
  if (amount.error || amount.value === 0) {
    error.textContent = amount.error || "Ask for at least 1 sat.";
    return;
  }
  const answer = await busy($("pairing-demo-get"), "Asking the peer…", () =>
    api("POST", "/api/demo/peer/invoice", { amount_msat: amount.value * 1000 }));
  if (!answer.ok) {
    showError(error, answer);
    return;
  }
  demoInvoice = answer.data.bolt11;
  $("pairing-demo-invoice").textContent = demoInvoice;
  $("pairing-demo-invoice").hidden = false;
  $("pairing-demo-buttons").hidden = false;
}

/// Logging out: the secret and what this session knew leave the page.
export function forget() {
  stopPolling();
  forgetSecret();
  showStep("idle");
  overview = null;
  off = false;
  connections = [];
  lastShown = "";
  confirming.clear();
  itemErrors.clear();
  demoInvoice = "";
  $("pairing-list").replaceChildren();
  $("pairing-demo-invoice").textContent = "";
  $("pairing-demo-invoice").hidden = true;
  $("pairing-demo-buttons").hidden = true;
  $("pairing-result").hidden = true;
  $("pairing-card").hidden = true;
}

export function init(h) {
  hooks = h;
  $("pairing-add-toggle").setAttribute("aria-expanded", "false");
  $("pairing-add-toggle").addEventListener("click", toggleForm);
  $("pairing-preset").addEventListener("change", applyPreset);
  for (const radio of document.querySelectorAll("input[name=pairing-permissions]")) {
    radio.addEventListener("change", renderForm);
  }
  $("pairing-form").addEventListener("submit", create);
  $("pairing-cancel").addEventListener("click", () => showStep("idle"));
  $("pairing-wait-cancel").addEventListener("click", (e) => cancelWaiting(e.currentTarget));
  $("pairing-key2").addEventListener("click", (e) => pressKey(2, e.currentTarget));
  $("pairing-key3").addEventListener("click", (e) => pressKey(3, e.currentTarget));
  $("pairing-again").addEventListener("click", () => {
    showStep("form");
    renderForm();
    $("pairing-create").focus();
  });
  $("pairing-refused-ok").addEventListener("click", () => showStep("idle"));
  $("pairing-show-buttons").append(
    copyButton(() => (pending ? pending.uri : ""), "Copy the text"),
    el("button", { type: "button", id: "pairing-done", onclick: done }, "Done"));
  $("pairing-demo-form").addEventListener("submit", getDemoInvoice);
  $("pairing-demo-buttons").append(copyButton(() => demoInvoice, "Copy invoice"));
}
