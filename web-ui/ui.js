// Shared helpers for the page's modules: talking to the box, building DOM without
// innerHTML, amounts in sat, times, copy buttons and QR codes. No framework, no build step.

export const $ = (id) => document.getElementById(id);

// --- talking to the box -----------------------------------------------------------------

/// One API call. Never throws: a box that cannot be reached answers with status 0 and an
/// error that says so, like any other failure. A dangerous action the box wants the
/// password for again (401 "reauth_required") asks for it in a dialog and is sent once
/// more; cancelled, its answer stays the refusal.
export async function api(method, path, body) {
  const answer = await call(method, path, body);
  if (answer.status === 401 && answer.data && answer.data.kind === "reauth_required" &&
      path !== "/api/reauth" && await reauthenticate()) {
    return call(method, path, body);
  }
  return answer;
}

let asking = null;

/// Asks for the password in the page's dialog until the box takes it (true) or the user
/// cancels (false). Requests that need it at the same time share one dialog.
function reauthenticate() {
  if (asking) return asking;
  const dialog = $("reauth-dialog");
  const form = $("reauth-form");
  const field = $("reauth-password");
  asking = new Promise((resolve) => {
    const submit = async (event) => {
      event.preventDefault();
      const answer = await call("POST", "/api/reauth", { password: field.value });
      if (answer.ok) finish(true);
      else showError($("reauth-error"), answer);
    };
    const cancel = (event) => { if (event) event.preventDefault(); finish(false); };
    function finish(ok) {
      form.removeEventListener("submit", submit);
      $("reauth-cancel").removeEventListener("click", cancel);
      dialog.removeEventListener("cancel", cancel);
      field.value = "";
      if (dialog.open) dialog.close();
      asking = null;
      resolve(ok);
    }
    form.addEventListener("submit", submit);
    $("reauth-cancel").addEventListener("click", cancel);
    dialog.addEventListener("cancel", cancel);
    showError($("reauth-error"), null);
    field.value = "";
    dialog.showModal();
    field.focus();
  });
  return asking;
}

async function call(method, path, body) {
  const options = { method, cache: "no-store", headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    return {
      ok: false, status: 0,
      data: { error: `Cannot reach the box (${err.message}). Is it powered on and on this network?` },
    };
  }
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  return { ok: response.ok, status: response.status, data };
}

/// The box's own words for a failed call.
export function errorText(answer) {
  if (answer.data && answer.data.error) return capitalize(answer.data.error);
  if (answer.status === 401) return "You were logged out: log in again.";
  return `The box answered HTTP ${answer.status}.`;
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/// Shows a failed call's message (and its stable kind, small) in `box`; `null` clears it.
export function showError(box, answer) {
  box.replaceChildren();
  delete box.dataset.kind;
  if (!answer) return;
  box.append(el("span", { class: "message" }, errorText(answer)));
  const kind = answer.data && answer.data.kind;
  if (kind) {
    box.dataset.kind = kind;
    box.append(el("span", { class: "kind" }, ` (${kind.replaceAll("_", " ")})`));
  }
}

/// Disables `button` while `work` runs, with a "…" label, and restores it afterwards.
export async function busy(button, label, work) {
  const before = button.textContent;
  button.disabled = true;
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.textContent = before;
  }
}

// --- DOM ---------------------------------------------------------------------------------

/// `el("p", { class: "note" }, "text", child)`: text goes in as text, never as HTML.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export function setText(id, value) {
  $(id).textContent = value === undefined || value === null ? "–" : String(value);
}

// --- amounts -----------------------------------------------------------------------------

// A narrow no-break space groups thousands: "21 000 sat" reads the same in every language
// and cannot be mistaken for a decimal point.
const GROUP = "\u202f";

export function groupDigits(value) {
  return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, GROUP);
}

export function sat(value) {
  return value === null || value === undefined ? "–" : `${groupDigits(value)} sat`;
}

/// msat as sat for people: whole sat when it is whole, else up to three decimals.
export function msat(value) {
  if (value === null || value === undefined) return "–";
  const whole = Math.floor(value / 1000);
  const rest = value % 1000;
  if (rest === 0) return sat(whole);
  return `${groupDigits(whole)}.${String(rest).padStart(3, "0").replace(/0+$/, "")} sat`;
}

/// Parses an amount of sat as people type it: "21000", "21 000", "21,000", "21000 sat".
/// Returns `{ value }` (null for an empty optional field) or `{ error }`.
export function parseSat(text, { optional = false } = {}) {
  let clean = text.trim().replace(/\s*sats?$/i, "");
  if (clean === "") {
    return optional ? { value: null } : { error: "Enter an amount in sat." };
  }
  // Digits, optionally grouped by threes with spaces, commas, apostrophes or underscores.
  // A decimal point is refused: amounts here are whole sat, not bitcoin.
  const grouped = /^[1-9]\d{0,2}([\s,'_\u00a0\u202f\u2009]\d{3})+$/;
  if (grouped.test(clean)) clean = clean.replace(/[\s,'_\u00a0\u202f\u2009]/g, "");
  if (!/^\d+$/.test(clean)) {
    return { error: "Amounts are whole sat, like 21000 or 21 000." };
  }
  const value = Number(clean);
  if (!Number.isSafeInteger(value * 1000)) {
    return { error: "That amount is too large." };
  }
  return { value };
}

// --- recovery words ----------------------------------------------------------------------

/// The words as typed: separated by spaces, commas or new lines; numbers like "1." left out.
export function typedWords(text) {
  return text.split(/[\s,]+/).filter((w) => w && !/^[\d.]+$/.test(w));
}

// --- times -------------------------------------------------------------------------------

/// A Unix time as local time: "14:32" today, "24 Nov, 14:32" otherwise.
export function when(unixSecs) {
  if (!unixSecs) return "–";
  const date = new Date(unixSecs * 1000);
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toLocaleDateString([], { day: "numeric", month: "short" })}, ${time}`;
}

/// How long ago a Unix time was, for people: "just now", "3 minutes ago", "yesterday".
/// A time ahead of this computer's clock (the box's clock is a little ahead) is "just now".
export function ago(unixSecs, nowMs = Date.now()) {
  if (!unixSecs) return "never";
  const secs = Math.max(0, nowMs / 1000 - unixSecs);
  if (secs < 45) return "just now";
  const minutes = Math.round(secs / 60);
  if (minutes < 60) return minutes === 1 ? "a minute ago" : `${minutes} minutes ago`;
  const hours = Math.round(secs / 3600);
  if (hours < 24) return hours === 1 ? "an hour ago" : `${hours} hours ago`;
  const days = Math.round(secs / 86400);
  return days === 1 ? "yesterday" : `${days} days ago`;
}

/// How long until a Unix time, for people: "in 3 minutes", "in 5 hours", "in 2 days".
export function inTime(unixSecs, nowMs = Date.now()) {
  const secs = unixSecs - nowMs / 1000;
  if (secs < 45) return "in a moment";
  const minutes = Math.round(secs / 60);
  if (minutes < 60) return minutes === 1 ? "in a minute" : `in ${minutes} minutes`;
  const hours = Math.round(secs / 3600);
  if (hours < 24) return hours === 1 ? "in an hour" : `in ${hours} hours`;
  const days = Math.round(secs / 86400);
  return days === 1 ? "in a day" : `in ${days} days`;
}

/// A Unix time in full, for tooltips: "24 Nov 2026, 14:32:05".
export function fullTime(unixSecs) {
  if (!unixSecs) return "";
  return new Date(unixSecs * 1000).toLocaleString([], {
    day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

/// A node id short enough for a line: "02ab12cd…ef34ab56".
export function shortId(id) {
  return id && id.length > 20 ? `${id.slice(0, 8)}…${id.slice(-8)}` : id;
}

// --- copying -------------------------------------------------------------------------------

/// A button that copies `text()` to the clipboard. The page is usually served over plain
/// http on the home network, where `navigator.clipboard` does not exist: the fallback copies
/// from a selected, off-screen text area.
export function copyButton(text, label = "Copy") {
  const button = el("button", { type: "button", class: "secondary copy" }, label);
  button.addEventListener("click", async () => {
    const value = text();
    let copied = false;
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(value); copied = true; } catch (_) { /* fall back */ }
    }
    if (!copied) {
      const area = el("textarea", { class: "offscreen", readonly: true });
      area.value = value;
      document.body.append(area);
      area.select();
      try { copied = document.execCommand("copy"); } catch (_) { copied = false; }
      area.remove();
    }
    button.textContent = copied ? "Copied" : "Select and copy by hand";
    setTimeout(() => { button.textContent = label; }, 1800);
  });
  return button;
}

// --- QR codes ------------------------------------------------------------------------------

/// Points `img` at the box's QR code of `text` (an SVG drawn by the box).
export function showQr(img, text) {
  img.src = `/api/qr?text=${encodeURIComponent(text)}`;
}
