// Wallet setup: shown while the box has no wallet seed (GET /api/wallet), one step at a
// time: choose → (words on the box's screen | words on this page → three words asked back)
// or restore from 24 words → done, or restore from a USB backup (usb-restore.js) → the
// dashboard. Also "Show the words again on the box" for a box with a wallet and a screen.
//
// The words of a new wallet reach this page only on a box without a screen. They live in
// one variable of this module while their two steps are on screen and are dropped (and
// taken out of the page) as soon as the user has typed three of them back. They are never
// stored anywhere else.

import { $, api, busy, el, showError, typedWords } from "./ui.js";
import * as usbRestore from "./usb-restore.js";

const WORD_COUNT = 24;
const WORDS_PER_SCREEN_PAGE = 6;
const STEPS = ["wallet-choose", "wallet-screen", "wallet-words", "wallet-confirm",
  "wallet-restore", "wallet-usb", "wallet-done"];

let hooks = null;
let step = null;         // the step on screen; null = no wallet setup in progress
let hasSeed = null;      // what GET /api/wallet said last (null: not asked yet)
let asking = false;
let words = null;        // a new wallet's words, only while the user writes them down
let positions = [];      // the 1-based positions asked back
let sawSeedScreen = false;

function show(name) {
  step = name;
  $("wallet-card").hidden = name === null;
  for (const id of STEPS) $(id).hidden = id !== name;
  // Leaving the page while the words are shown loses them for good: ask first.
  const guard = name === "wallet-words" || name === "wallet-confirm";
  window[guard ? "addEventListener" : "removeEventListener"]("beforeunload", holdOn);
}

function holdOn(event) {
  event.preventDefault();
  event.returnValue = "";
}

/// Called with every status: asks whether the box has a seed until it has one, and follows
/// the box's screen while it shows the words.
export function render(status) {
  if (hasSeed !== true && !asking) checkSeed();
  if (step === "wallet-screen") renderScreenStep(status.display);
  if (step === "wallet-usb") usbRestore.poll();
  // The words again, on the box's own screen: only a box with a screen and a wallet.
  $("words-again").hidden = !(status.display && hasSeed === true);
}

/// Whether the box has a wallet (null while not known yet).
export function hasWallet() {
  return hasSeed;
}

async function checkSeed() {
  asking = true;
  const answer = await api("GET", "/api/wallet");
  asking = false;
  if (!answer.ok) return;
  const known = hasSeed !== null;
  hasSeed = answer.data.has_seed;
  // The first answer changes what other cards say (the Backup card on a fresh box).
  if (!known) setTimeout(hooks.refresh, 0);
  if (!hasSeed && step === null) show("wallet-choose");
  // Someone set the wallet up from another browser meanwhile.
  if (hasSeed && step === "wallet-choose") show(null);
}

/// Logging out: nothing of a setup in progress stays in the page.
export function forget() {
  dropWords();
  usbRestore.reset();
  $("wallet-restore-words").value = "";
  hasSeed = null;
  show(null);
}

function done(text) {
  $("wallet-done-text").textContent = text;
  show("wallet-done");
  hooks.refresh();
}

// --- a new wallet ----------------------------------------------------------------------

async function create(button) {
  showError($("wallet-create-error"), null);
  const answer = await busy(button, "Creating…", () => api("POST", "/api/wallet/create", {}));
  if (!answer.ok) {
    showError($("wallet-create-error"), answer);
    return;
  }
  hasSeed = true;
  if (answer.data.shown_on === "screen") {
    sawSeedScreen = false;
    $("wallet-screen-intro").textContent = answer.data.message;
    show("wallet-screen");
    hooks.refresh();
  } else {
    words = answer.data.words;
    showWords();
  }
}

// The words on this page (a box without a screen).

function showWords() {
  $("seed-words").replaceChildren(...words.map((word, i) =>
    el("li", {}, el("span", { class: "n" }, `${i + 1}.`), el("span", { class: "w" }, word))));
  show("wallet-words");
}

function pickPositions(count) {
  const chosen = new Set();
  const random = new Uint32Array(1);
  while (chosen.size < count) {
    crypto.getRandomValues(random);
    chosen.add(1 + (random[0] % WORD_COUNT));
  }
  return [...chosen].sort((a, b) => a - b);
}

function askBack() {
  // The words leave the page while they are asked back.
  $("seed-words").replaceChildren();
  positions = pickPositions(3);
  $("wallet-confirm-fields").replaceChildren(...positions.map((position) =>
    el("label", {}, `Word ${position}`,
      el("input", {
        "data-position": position, autocomplete: "off", autocapitalize: "none",
        autocorrect: "off", spellcheck: "false", required: true,
      }))));
  showError($("wallet-confirm-error"), null);
  show("wallet-confirm");
  $("wallet-confirm-fields").querySelector("input").focus();
}

function checkBack(event) {
  event.preventDefault();
  const inputs = [...$("wallet-confirm-fields").querySelectorAll("input")];
  const wrong = inputs
    .filter((input) => input.value.trim().toLowerCase() !== words[Number(input.dataset.position) - 1])
    .map((input) => input.dataset.position);
  if (wrong.length > 0) {
    const which = wrong.length === 1 ? `Word ${wrong[0]} does` :
      `Words ${wrong.slice(0, -1).join(", ")} and ${wrong[wrong.length - 1]} do`;
    $("wallet-confirm-error").textContent =
      `${which} not match your new wallet. Check your paper, or show the words again.`;
    return;
  }
  dropWords();
  done("Your wallet is set up. Keep the paper somewhere safe: it is the only way to " +
       "recover your bitcoin. The Lightning node starts now.");
}

function dropWords() {
  words = null;
  positions = [];
  $("seed-words").replaceChildren();
  $("wallet-confirm-fields").replaceChildren();
}

// The words on the box's screen.

function renderScreenStep(display) {
  const simulated = Boolean(display) && display.panel === "simulated";
  $("wallet-mirror").hidden = !simulated;
  const page = display && /^Seed \{ page: (\d+) \}$/.exec(display.screen);
  const pages = WORD_COUNT / WORDS_PER_SCREEN_PAGE;
  const status = $("wallet-screen-page");
  if (page) {
    sawSeedScreen = true;
    const n = Number(page[1]);
    const first = n * WORDS_PER_SCREEN_PAGE + 1;
    status.textContent = `The screen shows words ${first} to ${first + WORDS_PER_SCREEN_PAGE - 1} ` +
      `(page ${n + 1} of ${pages}).` + (simulated ? " This box's screen is simulated, pictured below." : "");
    $("wallet-screen-keys").hidden = false;
    $("wallet-screen-prev").disabled = n === 0;
    $("wallet-screen-next").hidden = n + 1 >= pages;
    $("wallet-screen-done").hidden = n + 1 < pages;
    $("wallet-screen-written").hidden = true;
  } else if (sawSeedScreen) {
    status.textContent = "The words are off the screen.";
    $("wallet-screen-keys").hidden = true;
    $("wallet-screen-written").hidden = false;
  } else {
    status.textContent = "Waiting for the screen…";
    $("wallet-screen-keys").hidden = true;
  }
}

// --- restoring -------------------------------------------------------------------------

async function restore(event) {
  event.preventDefault();
  const button = event.submitter || $("wallet-restore").querySelector("button[type=submit]");
  showError($("wallet-restore-error"), null);
  const answer = await busy(button, "Restoring…", () =>
    api("POST", "/api/wallet/restore", { words: $("wallet-restore-words").value }));
  if (!answer.ok) {
    showError($("wallet-restore-error"), answer);
    return;
  }
  $("wallet-restore-words").value = "";
  hasSeed = true;
  done("Your wallet is restored. The Lightning node starts now and looks for your " +
       "on-chain bitcoin.");
}

// --- restoring from a USB backup -------------------------------------------------------

function restoredFromUsb(outcome) {
  hasSeed = true;
  show(null);
  hooks.restored(outcome);
  hooks.refresh();
}

// --- the words again, on the box's screen ---------------------------------------------------

async function showWordsAgain(button) {
  showError($("words-again-error"), null);
  $("words-again-result").textContent = "";
  const answer = await busy(button, "Asking the box…", () =>
    api("POST", "/api/wallet/show-words", {}));
  if (!answer.ok) {
    showError($("words-again-error"), answer);
    return;
  }
  $("words-again-result").textContent = answer.data.message;
  hooks.refresh();
}

export function init(h) {
  hooks = h;
  usbRestore.init({ finished: restoredFromUsb });
  $("wallet-usb-open").addEventListener("click", () => {
    show("wallet-usb");
    usbRestore.open();
  });
  $("usb-back").addEventListener("click", () => {
    usbRestore.reset();
    show("wallet-choose");
  });
  $("words-again-button").addEventListener("click", (e) => showWordsAgain(e.currentTarget));
  $("wallet-create").addEventListener("click", (e) => create(e.currentTarget));
  $("wallet-words-written").addEventListener("click", askBack);
  $("wallet-confirm").addEventListener("submit", checkBack);
  $("wallet-confirm-back").addEventListener("click", showWords);
  $("wallet-screen-prev").addEventListener("click", () => hooks.pressKey(3));
  $("wallet-screen-next").addEventListener("click", () => hooks.pressKey(1));
  $("wallet-screen-done").addEventListener("click", () => hooks.pressKey(2));
  $("wallet-screen-written").addEventListener("click", () =>
    done("Your wallet is set up. Keep the paper somewhere safe: it is the only way to " +
         "recover your bitcoin. The Lightning node starts now."));
  $("wallet-restore-open").addEventListener("click", () => {
    show("wallet-restore");
    $("wallet-restore-words").focus();
  });
  $("wallet-restore-back").addEventListener("click", () => {
    $("wallet-restore-words").value = "";
    $("wallet-restore-count").textContent = `0 of ${WORD_COUNT} words`;
    showError($("wallet-restore-error"), null);
    show("wallet-choose");
  });
  $("wallet-restore-words").addEventListener("input", (e) => {
    $("wallet-restore-count").textContent =
      `${typedWords(e.target.value).length} of ${WORD_COUNT} words`;
  });
  $("wallet-restore").addEventListener("submit", restore);
  $("wallet-done-ok").addEventListener("click", () => show(null));
}
