// The Channels card: each channel with a bar of our side and theirs, its state, Close and
// Force close (with a confirmation that explains the difference), and the Open form.

import { $, api, busy, el, parseSat, sat, shortId, showError } from "./ui.js";

let hooks = null;
let channels = [];
let lastShown = "";
const closing = new Set();   // channels the user asked to close (until they are gone)
let pending = null;          // { channel, force } while the close dialog is open

export function render(status) {
  const l = status.lightning;
  if (l.state) {
    const running = l.state.state === "running";
    // No channels to show before the node first ran (no wallet yet, switched off).
    $("channels-card").hidden = !running && !l.node_id;
    $("open-channel-toggle").disabled = !running;
  }
  channels = l.channels;
  const ids = new Set(channels.map((c) => c.user_channel_id));
  for (const id of closing) if (!ids.has(id)) closing.delete(id);
  // Redraw only on change, so a button under the pointer stays put between polls.
  const shown = JSON.stringify([channels, [...closing]]);
  if (shown === lastShown) return;
  lastShown = shown;
  $("channels-empty").hidden = channels.length > 0;
  $("channels-list").replaceChildren(...channels.map(channelItem));
}

function channelItem(c) {
  const isClosing = closing.has(c.user_channel_id);
  const state = isClosing ? "closing" : c.state;
  const percent = (part) => c.capacity_sat > 0 ? `${(100 * part) / c.capacity_sat}%` : "0";
  const bar = el("div", {
    class: "capacity", role: "img",
    "aria-label": `You can send ${sat(c.outbound_sat)}, receive ${sat(c.inbound_sat)}`,
  }, el("div", { class: "ours" }), el("div", { class: "theirs" }));
  bar.children[0].style.width = percent(c.outbound_sat);
  bar.children[1].style.width = percent(c.inbound_sat);
  return el("li", { class: "channel", "data-id": c.user_channel_id },
    el("div", { class: "channel-head" },
      el("span", { class: "peer", title: c.peer_id }, shortId(c.peer_id)),
      el("span", { class: "tag" }, c.public ? "public" : "private"),
      el("span", { class: `channel-state ${c.usable && !isClosing ? "ok" : "warn"}` }, state)),
    bar,
    el("div", { class: "legend" },
      el("span", { class: "ours-label" }, `You: ${sat(c.outbound_sat)}`),
      el("span", { class: "theirs-label" }, `Them: ${sat(c.inbound_sat)}`)),
    el("div", { class: "channel-foot" },
      el("span", { class: "note" }, c.opened_by ?
        `Size ${sat(c.capacity_sat)} · opened by ${c.opened_by} for a payment` :
        `Size ${sat(c.capacity_sat)}`),
      isClosing ? null : el("span", { class: "choices" },
        el("button", { type: "button", class: "secondary close", onclick: () => askClose(c, false) }, "Close"),
        el("button", { type: "button", class: "quiet force-close", onclick: () => askClose(c, true) }, "Force close…"))));
}

// --- closing -------------------------------------------------------------------------------

function askClose(channel, force) {
  pending = { channel, force };
  $("close-title").textContent = force ? "Force-close this channel?" : "Close this channel?";
  $("close-channel-line").textContent =
    `Channel with ${shortId(channel.peer_id)}; your side: ${sat(channel.outbound_sat)}.`;
  $("close-explain").textContent = force ?
    "Your box puts its latest channel state on the chain without the other node. Your side " +
    "comes back to your on-chain wallet only after a delay of about 1 day (144 blocks), and " +
    "the fees are higher." :
    "Both nodes agree on the final balances. Your side, less a small fee, comes back to your " +
    "on-chain wallet once the closing transaction confirms, usually within an hour. The " +
    "other node must be online.";
  $("close-other").textContent = force ?
    "Use it only when the other node is gone or does not answer; otherwise a normal close " +
    "is faster and cheaper." :
    "If the other node is gone for good, use Force close instead: your funds are then " +
    "locked for about 1 day (144 blocks).";
  $("close-confirm").textContent = force ? "Force close" : "Close channel";
  $("close-confirm").className = force ? "danger" : "";
  showError($("close-error"), null);
  $("close-dialog").showModal();
}

async function confirmClose() {
  const { channel, force } = pending;
  const answer = await busy($("close-confirm"), "Closing…", () =>
    api("POST", `/api/lightning/channels/${encodeURIComponent(channel.user_channel_id)}/close`,
      { force }));
  if (!answer.ok) {
    showError($("close-error"), answer);
    return;
  }
  closing.add(channel.user_channel_id);
  $("close-dialog").close();
  lastShown = "";
  render({ lightning: { channels } });
  hooks.refresh();
}

// --- opening -------------------------------------------------------------------------------

function toggleOpenForm(open) {
  $("open-channel-form").hidden = !open;
  $("open-channel-toggle").setAttribute("aria-expanded", open);
  if (open) {
    $("open-result").hidden = true;
    $("open-node-id").focus();
  }
}

/// "id@host:port" pasted into the id field fills both fields.
function splitNodeUri() {
  const value = $("open-node-id").value.trim();
  const at = value.indexOf("@");
  if (at > 0) {
    $("open-node-id").value = value.slice(0, at);
    $("open-address").value = value.slice(at + 1);
  }
}

async function openChannel(event) {
  event.preventDefault();
  splitNodeUri();
  const error = $("open-error");
  showError(error, null);
  const amount = parseSat($("open-amount").value);
  if (amount.error) {
    error.textContent = `Channel size: ${amount.error}`;
    return;
  }
  const push = parseSat($("open-push").value, { optional: true });
  if (push.error) {
    error.textContent = `Given to the other side: ${push.error}`;
    return;
  }
  const body = {
    node_id: $("open-node-id").value.trim(),
    address: $("open-address").value.trim(),
    amount_sat: amount.value,
    push_msat: (push.value || 0) * 1000,
    public: $("open-public").checked,
  };
  const answer = await busy($("open-button"), "Opening…", () =>
    api("POST", "/api/lightning/channels", body));
  if (!answer.ok) {
    showError(error, answer);
    return;
  }
  $("open-channel-form").reset();
  toggleOpenForm(false);
  $("open-result").textContent = `Opening a ${sat(body.amount_sat)} channel with ` +
    `${shortId(body.node_id)}. It can be used once its funding transaction has a few ` +
    "confirmations; its state shows below.";
  $("open-result").hidden = false;
  hooks.refresh();
}

export function init(h) {
  hooks = h;
  $("open-channel-toggle").setAttribute("aria-expanded", "false");
  $("open-channel-toggle").addEventListener("click", () =>
    toggleOpenForm($("open-channel-form").hidden));
  $("open-cancel").addEventListener("click", () => {
    showError($("open-error"), null);
    toggleOpenForm(false);
  });
  $("open-node-id").addEventListener("change", splitNodeUri);
  $("open-node-id").addEventListener("paste", () => setTimeout(splitNodeUri));
  $("open-channel-form").addEventListener("submit", openChannel);
  $("close-confirm").addEventListener("click", confirmClose);
  $("close-cancel").addEventListener("click", () => $("close-dialog").close());
}
