// The Lightning card: the node's state, balances, node details, and the Receive, Send,
// Add-funds and Withdraw panels (one open at a time); after a restore from the USB backup,
// a notice with the restored node id.

import {
  $, ago, api, busy, copyButton, el, groupDigits, msat, parseSat, sat, setText, showError,
  showQr, when,
} from "./ui.js";
import { isDemo } from "./backup.js";

let hooks = null;
let running = false;
let latestPayments = [];  // status.lightning.recent_payments, to see an invoice being paid
let invoice = null;       // the invoice on screen in the Receive panel
let nodeUri = "";
let onchainSpendable = 0;
let withdrawal = null;    // { address, amount_sat } while it waits for "Send"
let lsp = null;           // GET /api/lightning/lsp: the liquidity provider, if any
let lspAsked = false;     // asked once since the node runs
let pendingJit = null;    // { body, fee_sat } while the user decides on a channel's fee
let lspLater = false;     // "Not now" on the offer, for this visit
let boxHasKeys = false;   // a withdrawal then also waits for KEY2 on the box

const STATE_WORDS = {
  disabled: ["Not running", "warn"],
  waiting: ["Waiting", "warn"],
  starting: ["Starting", "warn"],
  running: ["Running", "ok"],
  failed: ["Failed", "bad"],
  stopping: ["Stopping", "warn"],
  stopped: ["Stopped", "warn"],
};

export function render(status) {
  const l = status.lightning;
  const [words, tone] = STATE_WORDS[l.state.state] || [l.state.state, "warn"];
  const state = $("lightning-state");
  state.textContent = words;
  state.className = `state ${tone}`;
  const reason = l.state.reason || l.state.message ||
    (l.state.state === "disabled" ? "The Lightning node is turned off in the settings (lightning.enabled)." : "");
  $("lightning-reason").textContent = reason;
  $("lightning-reason").hidden = !reason;
  $("lightning-recovery").hidden = !l.recovery_mode;

  running = l.state.state === "running";
  for (const button of $("ln-actions").querySelectorAll("button")) button.disabled = !running;
  // A node that never ran (no wallet yet, switched off) has no balances or actions to show.
  const ever = running || Boolean(l.node_id);
  $("balances").hidden = !ever;
  $("ln-actions").hidden = !ever;
  $("node-details").hidden = !ever;
  $("ln-actions-note").hidden = running || !ever;

  const b = l.balances;
  setText("balance-lightning", running ? sat(b.lightning_spendable_sat) : null);
  setText("balance-receivable", running ? sat(b.lightning_receivable_sat) : null);
  if (running && !lspAsked) {
    lspAsked = true;
    loadLsp();
  }
  setText("balance-onchain", running ? sat(b.onchain_sat) : null);
  setText("balance-pending", running ? sat(b.pending_sat) : null);
  const unconfirmed = b.onchain_sat - b.onchain_spendable_sat;
  $("balance-onchain-note").textContent = unconfirmed > 0 ?
    `${sat(b.onchain_spendable_sat)} spendable now` : "for opening channels";

  setText("node-id", l.node_id);
  const ip = (status.system.ip_addresses || []).find((a) => !a.includes(":"));
  nodeUri = l.node_id && l.listening_port && ip ? `${l.node_id}@${ip}:${l.listening_port}` : "";
  setText("node-uri", nodeUri || null);
  setText("node-peers", l.node_id ? l.peers : null);
  $("node-copy").hidden = !l.node_id;

  latestPayments = l.recent_payments;
  if (invoice) renderInvoicePaid();

  onchainSpendable = b.onchain_spendable_sat;
  boxHasKeys = Boolean(status.display && status.display.has_keys);
  $("withdraw-available").textContent = running ?
    `Spendable on-chain now: ${sat(b.onchain_spendable_sat)}.` : "";
}

// --- restored from the USB backup ------------------------------------------------------------

/// Shows what a restore from the USB backup brought back, until the user dismisses it.
export function showRestored(outcome) {
  const parts = [
    "Restored from the USB backup (generation " +
      `${groupDigits(outcome.generation)}, written ${ago(outcome.written_at)}).`,
  ];
  parts.push(outcome.recovery_mode ?
    "It is an older copy, so the Lightning node starts in recovery mode: your peers close " +
    "the channels, your side returns to the on-chain wallet, and no payments can be made " +
    "until then. Node id:" :
    "The Lightning node starts with your channels and this node id:");
  $("lightning-restored-text").textContent = parts.join(" ");
  $("lightning-restored-id").textContent = outcome.node_id;
  $("lightning-restored").hidden = false;
  $("lightning-card").scrollIntoView({ block: "start" });
}

// --- panels ------------------------------------------------------------------------------

function openPanel(id) {
  for (const button of $("ln-actions").querySelectorAll("button")) {
    const open = button.dataset.panel === id && $(id).hidden;
    button.setAttribute("aria-expanded", open);
    $(button.dataset.panel).hidden = !open;
  }
  if (id === "fund-panel" && !$(id).hidden && $("fund-address").textContent === "") newAddress();
  if (id === "withdraw-panel" && !$(id).hidden && $("withdraw-form").hidden) newWithdrawal();
  const first = $(id).querySelector("input, textarea");
  if (!$(id).hidden && first) first.focus();
}

// --- receive -------------------------------------------------------------------------------

async function createInvoice(event) {
  event.preventDefault();
  const error = $("receive-error");
  showError(error, null);
  const amount = parseSat($("receive-amount").value, { optional: true });
  if (amount.error) {
    error.textContent = amount.error;
    return;
  }
  const body = {
    amount_msat: amount.value === null ? null : amount.value * 1000,
    description: $("receive-description").value.trim(),
  };
  const button = event.submitter || $("receive-form").querySelector("button");
  const answer = await busy(button, "Creating…", () => api("POST", "/api/lightning/invoices", body));
  if (!answer.ok) {
    await handleRefusal(answer, body);
    return;
  }
  showInvoice(answer.data, body.description);
}

/// What the box answered when the channels cannot take the payment: agree to the provider,
/// approve its fee, or read why not.
async function handleRefusal(answer, body) {
  const kind = answer.data && answer.data.kind;
  if (kind === "needs_channel") {
    pendingJit = { body, fee_sat: answer.data.lsp_fee_sat };
    const name = lsp ? lsp.name : "The liquidity provider";
    $("receive-jit-text").textContent =
      `This payment opens a channel: ${name} keeps at most ${sat(answer.data.lsp_fee_sat)} of ` +
      "it, and the rest arrives here. Later payments that fit go through that channel.";
    $("receive-jit").hidden = false;
    $("receive-submit").hidden = true;
    return;
  }
  if (kind === "lsp_not_agreed") {
    await loadLsp();
    $("lsp-offer").hidden = false;
    $("lsp-offer").scrollIntoView({ block: "nearest" });
  }
  showError($("receive-error"), answer);
}

async function acceptJit() {
  if (!pendingJit) return;
  const body = { ...pendingJit.body, max_lsp_fee_sat: pendingJit.fee_sat };
  const answer = await busy($("receive-jit-accept"), "Creating…",
    () => api("POST", "/api/lightning/invoices", body));
  cancelJit();
  if (!answer.ok) {
    // The provider may ask more now: say so and ask again.
    if (answer.data && answer.data.kind === "needs_channel") return handleRefusal(answer, pendingJit.body || body);
    showError($("receive-error"), answer);
    return;
  }
  showInvoice(answer.data, body.description);
}

function cancelJit() {
  pendingJit = null;
  $("receive-jit").hidden = true;
  $("receive-submit").hidden = false;
}

async function loadLsp() {
  const answer = await api("GET", "/api/lightning/lsp");
  if (!answer.ok) return;
  lsp = answer.data.lsp;
  $("lsp-offer-name").textContent = lsp ? lsp.name[0].toUpperCase() + lsp.name.slice(1) : "";
  $("lsp-offer").hidden = !lsp || lsp.agreed || lspLater;
  $("balance-receivable-note").textContent = lsp && lsp.agreed ?
    "in channels; more opens a channel" : "in channels";
}

async function agreeToLsp() {
  const answer = await busy($("lsp-agree"), "Saving…",
    () => api("POST", "/api/lightning/lsp", { agree: true }));
  if (!answer.ok) {
    showError($("lsp-error"), answer);
    return;
  }
  showError($("lsp-error"), null);
  showError($("receive-error"), null);
  await loadLsp();
}

function showInvoice(data, description) {
  invoice = { ...data, description };
  $("receive-form").hidden = true;
  $("receive-result").hidden = false;
  showQr($("receive-qr"), `LIGHTNING:${invoice.bolt11.toUpperCase()}`);
  const parts = [invoice.amount_msat === null ? "Any amount" : msat(invoice.amount_msat)];
  if (invoice.description) parts.push(invoice.description);
  parts.push(`valid until ${when(invoice.expires_at)}`);
  if (invoice.jit) {
    parts.push(`opens a channel: the provider keeps at most ${sat(invoice.max_lsp_fee_sat)}`);
  }
  $("receive-summary").textContent = parts.join(" · ");
  $("receive-invoice").textContent = invoice.bolt11;
  renderInvoicePaid();
}

/// In the demo: the demo's peer pays the invoice on screen (through the demo's liquidity
/// provider when it opens a channel), so a newcomer sees a payment arrive.
async function payFromDemoPeer(event) {
  if (!invoice) return;
  const answer = await busy(event.currentTarget, "Paying…",
    () => api("POST", "/api/demo/peer/pay", { invoice: invoice.bolt11 }));
  if (!answer.ok) showError($("receive-paid"), answer);
}

function renderInvoicePaid() {
  $("receive-demo-pay").hidden = !isDemo();
  const paid = latestPayments.find((p) =>
    p.inbound && p.status === "succeeded" && p.payment_hash === invoice.payment_hash);
  const line = $("receive-paid");
  if (paid) {
    line.textContent = paid.lsp_fee_msat ?
      `Received ${msat(paid.amount_msat)} through a new channel (the provider kept ` +
        `${msat(paid.lsp_fee_msat)} for opening it).` :
      `Received ${msat(paid.amount_msat)}.`;
    line.className = "success";
  } else {
    line.textContent = "Waiting for the payment…";
    line.className = "note";
  }
}

function newInvoiceForm() {
  invoice = null;
  cancelJit();
  $("receive-result").hidden = true;
  $("receive-qr").removeAttribute("src");
  $("receive-form").hidden = false;
  $("receive-amount").value = "";
  $("receive-description").value = "";
  $("receive-amount").focus();
}

// --- send ----------------------------------------------------------------------------------

let decoded = null;    // what the box read from the pasted text
let decodeTimer = null;

/// The pasted invoice or offer as the box reads it: without a "lightning:" prefix, and in
/// lower case when it came all in capitals (as QR codes carry them).
function pastedText() {
  const text = $("send-invoice").value.trim().replace(/^lightning:/i, "");
  return text === text.toUpperCase() ? text.toLowerCase() : text;
}

function onPaste() {
  clearTimeout(decodeTimer);
  $("send-result").hidden = true;
  showError($("send-error"), null);
  decoded = null;
  renderPreview();
  if (pastedText() === "") return;
  decodeTimer = setTimeout(decode, 250);
}

async function decode() {
  const text = pastedText();
  const answer = await api("POST", "/api/lightning/decode", { text });
  if (text !== pastedText()) return; // the field changed meanwhile
  if (!answer.ok) {
    showError($("send-error"), answer);
    return;
  }
  decoded = answer.data;
  renderPreview();
}

function renderPreview() {
  const preview = $("send-preview");
  const needsAmount = decoded !== null && decoded.amount_msat === null;
  $("send-amount-row").hidden = !needsAmount;
  // The fee limit applies to invoices; offers are paid with the node's own limits.
  $("send-options").hidden = decoded !== null && decoded.kind === "bolt12";
  $("send-button").textContent = decoded && decoded.amount_msat !== null ?
    `Pay ${msat(decoded.amount_msat)}` : "Pay";
  if (!decoded) {
    preview.hidden = true;
    return;
  }
  const what = decoded.kind === "bolt12" ? "Offer" : "Invoice";
  const parts = [`${what}: ${decoded.amount_msat === null ? "you choose the amount" : msat(decoded.amount_msat)}`];
  if (decoded.description) parts.push(`“${decoded.description}”`);
  if (decoded.expired) parts.push("expired");
  else if (decoded.expires_at) parts.push(`valid until ${when(decoded.expires_at)}`);
  preview.textContent = parts.join(" · ");
  preview.hidden = false;
}

async function pay(event) {
  event.preventDefault();
  const error = $("send-error");
  showError(error, null);
  $("send-result").hidden = true;
  const text = pastedText();
  if (text === "") {
    error.textContent = "Paste an invoice (lnbc…) or an offer (lno…) first.";
    return;
  }
  const body = { invoice: text };
  if (!$("send-amount-row").hidden) {
    const amount = parseSat($("send-amount").value);
    if (amount.error) {
      error.textContent = amount.error;
      return;
    }
    body.amount_msat = amount.value * 1000;
  }
  const fee = parseSat($("send-max-fee").value, { optional: true });
  if (fee.error) {
    error.textContent = `Fee limit: ${fee.error}`;
    return;
  }
  if (fee.value !== null && !$("send-options").hidden) body.max_fee_msat = fee.value * 1000;
  const button = $("send-button");
  const answer = await busy(button, "Paying… (up to a minute)", () =>
    api("POST", "/api/lightning/pay", body));
  if (!answer.ok) {
    showError(error, answer);
    return;
  }
  const p = answer.data;
  const result = $("send-result");
  result.dataset.status = p.status;
  if (p.status === "succeeded") {
    result.textContent = `Paid ${msat(p.amount_msat)}` +
      (p.fee_msat !== null ? `, fee ${msat(p.fee_msat)}.` : ".");
  } else {
    result.textContent = "The payment is still on its way; it shows under Payments when it " +
      "arrives or fails.";
  }
  result.hidden = false;
  $("send-invoice").value = "";
  $("send-amount").value = "";
  decoded = null;
  renderPreview();
  hooks.refresh();
}

// --- add funds -----------------------------------------------------------------------------

async function newAddress() {
  showError($("fund-error"), null);
  const answer = await api("POST", "/api/lightning/address", {});
  if (!answer.ok) {
    showError($("fund-error"), answer);
    return;
  }
  const address = answer.data.address;
  $("fund-address").textContent = address;
  showQr($("fund-qr"), `BITCOIN:${address.toUpperCase()}`);
  $("fund-result").hidden = false;
}

// --- withdraw ------------------------------------------------------------------------------

function renderWithdrawAll() {
  const all = $("withdraw-all").checked;
  $("withdraw-amount").disabled = all;
  if (all) $("withdraw-amount").value = "";
  $("withdraw-all-note").hidden = !all;
}

/// "Review": checks what can be checked here and asks before sending.
function reviewWithdrawal(event) {
  event.preventDefault();
  const error = $("withdraw-error");
  showError(error, null);
  const address = $("withdraw-address").value.trim();
  if (address === "") {
    error.textContent = "Paste the Bitcoin address to send to.";
    $("withdraw-address").focus();
    return;
  }
  let amount = null;
  if (!$("withdraw-all").checked) {
    const parsed = parseSat($("withdraw-amount").value);
    if (parsed.error) {
      error.textContent = `${parsed.error} Or tick “Everything”.`;
      $("withdraw-amount").focus();
      return;
    }
    amount = parsed.value;
    if (amount > onchainSpendable) {
      error.textContent = `That is more than the ${sat(onchainSpendable)} spendable on-chain now.`;
      return;
    }
  }
  withdrawal = { address, amount_sat: amount };
  $("withdraw-summary").textContent = amount === null ?
    "Send everything on-chain (less the fee and the reserve for closing channels) to:" :
    `Send ${sat(amount)} (plus the network fee) to:`;
  $("withdraw-confirm-address").textContent = address;
  showError($("withdraw-send-error"), null);
  $("withdraw-form").hidden = true;
  $("withdraw-confirm").hidden = false;
  $("withdraw-send").focus();
}

async function sendWithdrawal() {
  if (!withdrawal) return;
  const error = $("withdraw-send-error");
  showError(error, null);
  const body = { address: withdrawal.address };
  if (withdrawal.amount_sat !== null) body.amount_sat = withdrawal.amount_sat;
  $("withdraw-key-note").hidden = !boxHasKeys;
  const answer = await busy($("withdraw-send"), "Sending…", () =>
    api("POST", "/api/lightning/withdraw", body));
  $("withdraw-key-note").hidden = true;
  if (!answer.ok) {
    showError(error, answer);
    return;
  }
  $("withdraw-done").textContent = (withdrawal.amount_sat === null ?
    "Sent everything on-chain." : `Sent ${sat(withdrawal.amount_sat)}.`) +
    " It is final once the transaction confirms (about 10 minutes per block).";
  $("withdraw-txid").textContent = answer.data.txid;
  withdrawal = null;
  $("withdraw-confirm").hidden = true;
  $("withdraw-result").hidden = false;
  hooks.refresh();
}

function changeWithdrawal() {
  withdrawal = null;
  $("withdraw-confirm").hidden = true;
  $("withdraw-form").hidden = false;
  $("withdraw-address").focus();
}

function newWithdrawal() {
  withdrawal = null;
  $("withdraw-result").hidden = true;
  $("withdraw-confirm").hidden = true;
  $("withdraw-form").hidden = false;
  $("withdraw-address").value = "";
  $("withdraw-amount").value = "";
  $("withdraw-all").checked = false;
  renderWithdrawAll();
  showError($("withdraw-error"), null);
  $("withdraw-address").focus();
}

export function init(h) {
  hooks = h;
  for (const button of $("ln-actions").querySelectorAll("button")) {
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", button.dataset.panel);
    button.addEventListener("click", () => openPanel(button.dataset.panel));
  }
  $("receive-form").addEventListener("submit", createInvoice);
  $("receive-jit-accept").addEventListener("click", acceptJit);
  $("receive-jit-cancel").addEventListener("click", cancelJit);
  $("lsp-agree").addEventListener("click", agreeToLsp);
  $("lsp-later").addEventListener("click", () => { lspLater = true; $("lsp-offer").hidden = true; });
  $("receive-buttons").append(
    copyButton(() => invoice ? invoice.bolt11 : "", "Copy invoice"),
    el("button", { type: "button", class: "secondary", id: "receive-new", onclick: newInvoiceForm },
      "New invoice"),
    el("button", { type: "button", class: "secondary", id: "receive-demo-pay", hidden: true,
      onclick: payFromDemoPeer }, "Pay it from the demo's peer"));
  $("send-invoice").addEventListener("input", onPaste);
  $("send-form").addEventListener("submit", pay);
  $("fund-buttons").append(
    copyButton(() => $("fund-address").textContent, "Copy address"),
    el("button", { type: "button", class: "secondary", onclick: newAddress }, "New address"));
  $("withdraw-form").addEventListener("submit", reviewWithdrawal);
  $("withdraw-all").addEventListener("change", renderWithdrawAll);
  $("withdraw-send").addEventListener("click", sendWithdrawal);
  $("withdraw-change").addEventListener("click", changeWithdrawal);
  $("withdraw-buttons").append(
    copyButton(() => $("withdraw-txid").textContent, "Copy transaction id"),
    el("button", { type: "button", class: "secondary", onclick: newWithdrawal }, "New withdrawal"));
  $("lightning-restored-ok").addEventListener("click", () => { $("lightning-restored").hidden = true; });
  $("node-copy").append(
    copyButton(() => $("node-id").textContent, "Copy node id"),
    copyButton(() => nodeUri, "Copy id@address"));
}
