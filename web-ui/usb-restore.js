// Restoring a fresh box from its USB backup stick, a step of the wallet setup: the copies on
// the plugged-in stick (or a request to plug it in, noticed by itself), the 24 words, and
// every refusal in the box's words. An older copy ("stale") is restored only after the page
// has said what recovery mode means and the user presses "Restore anyway", which sends the
// same words and copy again with `insist`.

import {
  $, ago, api, busy, el, errorText, fullTime, groupDigits, shortId, showError, typedWords,
} from "./ui.js";

const WORD_COUNT = 24;

let hooks = null;          // { finished(outcome) }
let copies = [];           // what GET /api/backup/copies listed last
let shown = "";            // the list on screen (JSON), redrawn only on change
let selected = null;       // "node/generation" of the chosen copy
let asking = false;
let staleRequest = null;   // the request the box called stale, for "Restore anyway"

const KIND_WORDS = { mirror: "live mirror", snapshot: "snapshot" };

const key = (copy) => `${copy.node_id}/${copy.generation}`;

/// The step opens: nothing from an earlier attempt stays.
export function open() {
  reset();
  poll();
  $("usb-words").focus();
}

/// Leaving the step or logging out: the typed words leave the page.
export function reset() {
  $("usb-words").value = "";
  $("usb-words-count").textContent = `0 of ${WORD_COUNT} words`;
  showError($("usb-error"), null);
  hideStale();
  copies = [];
  shown = "";
  selected = null;
  $("usb-copies").hidden = true;
  $("usb-copies-list").replaceChildren();
  $("usb-plug").hidden = false;
  $("usb-plug").textContent = "Looking for the stick…";
}

/// Called with every status while the step is on screen: follows the stick.
export async function poll() {
  if (asking) return;
  asking = true;
  const answer = await api("GET", "/api/backup/copies");
  asking = false;
  if (!answer.ok) {
    copies = [];
    // The box's words ("No backup stick is plugged in …"), and that the page waits.
    showPlug(`${errorText(answer)} This page notices it by itself.`);
    return;
  }
  copies = answer.data;
  if (copies.length === 0) {
    showPlug("The stick that is plugged in holds no plugnode backup. Is it the right " +
      "stick? Plug in the one that holds your backup.");
    return;
  }
  renderCopies();
}

function showPlug(text) {
  $("usb-plug").textContent = text;
  $("usb-plug").hidden = false;
  $("usb-copies").hidden = true;
  $("usb-copies-list").replaceChildren();
  shown = "";
}

function renderCopies() {
  if (!copies.some((c) => key(c) === selected)) selected = key(copies[0]);
  $("usb-plug").hidden = true;
  $("usb-copies").hidden = false;
  // Redraw only on change, so a choice being made is not snatched away: the radio buttons
  // stay the same elements while "… minutes ago" is brought up to date in place.
  const now = JSON.stringify([copies, selected]);
  if (now === shown) {
    refreshAges();
    return;
  }
  shown = now;
  const newest = new Set();
  const items = copies.map((copy, i) => {
    const isNewest = !newest.has(copy.node_id);
    newest.add(copy.node_id);
    const id = `usb-copy-${i}`;
    const input = el("input", {
      type: "radio", name: "usb-copy", id, value: key(copy), checked: key(copy) === selected,
    });
    input.addEventListener("change", () => {
      selected = key(copy);
      hideStale();
      showError($("usb-error"), null);
    });
    return el("li", { class: "usb-copy", "data-generation": copy.generation },
      input,
      el("label", { for: id },
        el("span", { class: "copy-node", title: copy.node_id }, `Node ${shortId(copy.node_id)}`),
        isNewest ? el("span", { class: "tag" }, "newest") : null,
        el("span", { class: "copy-meta" },
          `Generation ${groupDigits(copy.generation)} · `,
          el("span", { class: "copy-age", "data-written-at": copy.written_at,
            title: fullTime(copy.written_at) }, ago(copy.written_at)),
          ` · ${KIND_WORDS[copy.kind] || copy.kind}`)));
  });
  $("usb-copies-list").replaceChildren(...items);
}

function refreshAges() {
  for (const age of $("usb-copies-list").querySelectorAll(".copy-age")) {
    const text = ago(Number(age.dataset.writtenAt));
    if (age.textContent !== text) age.textContent = text;
  }
}

function chosenCopy() {
  return copies.find((c) => key(c) === selected) || null;
}

/// The request for the chosen copy: its generation only when it is not the newest of its
/// node (without one, the box takes the newest copy of the wallet the words belong to).
function request() {
  const body = { words: $("usb-words").value };
  const copy = chosenCopy();
  if (copy) {
    const newestOfNode = copies.find((c) => c.node_id === copy.node_id);
    if (newestOfNode !== copy) body.generation = copy.generation;
  }
  return body;
}

function hideStale() {
  staleRequest = null;
  $("usb-stale").hidden = true;
}

async function restore(button, body) {
  showError($("usb-error"), null);
  const answer = await busy(button, "Restoring…", () => api("POST", "/api/backup/restore", body));
  if (!answer.ok) {
    showError($("usb-error"), answer);
    if (answer.data && answer.data.kind === "stale") {
      staleRequest = body;
      $("usb-stale").hidden = false;
      $("usb-insist").focus();
    } else {
      hideStale();
    }
    return;
  }
  const outcome = answer.data;
  reset();
  hooks.finished(outcome);
}

function submit(event) {
  event.preventDefault();
  hideStale();
  const typed = typedWords($("usb-words").value).length;
  if (typed === 0) {
    $("usb-error").textContent = "Type your 24 recovery words first.";
    $("usb-words").focus();
    return;
  }
  restore($("usb-restore"), request());
}

function insist() {
  if (!staleRequest) return;
  restore($("usb-insist"), { ...staleRequest, insist: true });
}

export function init(h) {
  hooks = h;
  $("wallet-usb").addEventListener("submit", submit);
  $("usb-insist").addEventListener("click", insist);
  $("usb-words").addEventListener("input", (e) => {
    hideStale();
    $("usb-words-count").textContent =
      `${typedWords(e.target.value).length} of ${WORD_COUNT} words`;
  });
}
