// The Payments card: the newest payments from the status, or all of them on request.

import { $, api, el, msat, showError, when } from "./ui.js";

let showAll = false;
let lastRecent = "";
let loading = false;

export function render(status) {
  const l = status.lightning;
  $("payments-card").hidden = l.state.state !== "running" && !l.node_id;
  const recent = JSON.stringify(l.recent_payments);
  if (recent === lastRecent) return;
  lastRecent = recent;
  if (showAll) {
    loadAll();
  } else {
    show(l.recent_payments);
    // The status keeps the newest ten; offer the rest when there may be more.
    $("payments-all").hidden = l.recent_payments.length < 10;
  }
}

function show(payments) {
  // An invoice the box created is an inbound payment "pending" until it is paid, and
  // stays so when nobody pays it: the list shows money that moved (or is moving out).
  const shown = payments.filter((p) => !p.inbound || p.status === "succeeded");
  $("payments-empty").hidden = shown.length > 0;
  $("payments-list").replaceChildren(...shown.map(paymentItem));
}

const STATUS_WORDS = { pending: "on its way", failed: "failed", succeeded: "" };
const KIND_WORDS = { bolt11: "invoice", bolt12: "offer", keysend: "keysend" };

function paymentItem(p) {
  const meta = [when(p.updated_at), KIND_WORDS[p.kind] || p.kind];
  if (!p.inbound && p.fee_msat) meta.push(`fee ${msat(p.fee_msat)}`);
  if (p.inbound && p.lsp_fee_msat) meta.push(`the provider kept ${msat(p.lsp_fee_msat)} for a new channel`);
  const status = STATUS_WORDS[p.status] ?? p.status;
  return el("li", { class: `payment ${p.inbound ? "in" : "out"} ${p.status}`, "data-id": p.id },
    el("span", { class: "dir", "aria-hidden": "true" }, p.inbound ? "↓" : "↑"),
    el("span", { class: "what" },
      el("span", {},
        el("span", { class: "direction" }, p.inbound ? "Received" : "Sent"),
        status ? el("span", { class: "payment-status" }, ` · ${status}`) : null),
      el("span", { class: "meta" }, meta.join(" · "))),
    el("span", { class: "amount" }, `${p.inbound ? "+" : "−"}${msat(p.amount_msat)}`));
}

async function loadAll() {
  if (loading) return;
  loading = true;
  const answer = await api("GET", "/api/lightning/payments");
  loading = false;
  if (!answer.ok) {
    showError($("payments-error"), answer);
    return;
  }
  showError($("payments-error"), null);
  $("payments-all").hidden = true;
  show(answer.data);
}

export function init() {
  $("payments-all").addEventListener("click", () => {
    showAll = true;
    loadAll();
  });
}
