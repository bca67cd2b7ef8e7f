//! End-to-end: two plugnode boxes with Lightning nodes on one simulated chain, driven
//! through the web API as the web page and scripts drive them: fund, open, pay both ways,
//! keysend, amountless invoices, refusals that move no money, closing, and restarts.

mod common;

use common::lightning::*;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// An invoice for this network that expired an hour ago (signed by some other node).
fn expired_invoice() -> String {
    foreign_invoice(10_000, 7200, "long gone")
}

fn paid(answer: &Value) -> bool {
    answer["status"] == "succeeded"
}

#[test]
fn open_pay_both_ways_keysend_amountless_and_refusals_that_move_no_money() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let a = LnBox::start(&dir.path().join("a"), &chain);
    let b = LnBox::start(&dir.path().join("b"), &chain);

    a.fund(&chain);
    open_channel(&chain, &a, &b, 1_000_000, 0);
    let channel = &a.channels()[0];
    assert_eq!(channel["capacity_sat"], 1_000_000);
    assert_eq!(channel["state"], "open");

    // B invoices, A pays: A's side shrinks by amount + fee, B's grows by the amount (less
    // the 1 % reserve B must keep, which B's side now has to cover).
    let (a_before, b_before) = (a.outbound_sat(), b.outbound_sat());
    assert_eq!(b_before, 0);
    let invoice = b.invoice(Some(50_000_000), "coffee");
    let (code, payment) = a.pay(&invoice, None);
    assert_eq!(code, 200, "{payment}");
    assert!(paid(&payment), "{payment}");
    assert_eq!(payment["amount_msat"], 50_000_000);
    let fee_sat = payment["fee_msat"].as_u64().unwrap_or(0) / 1000;
    wait_for("A's balance to drop", LN_TIMEOUT, || {
        (a.outbound_sat() == a_before - 50_000 - fee_sat).then_some(())
    });
    wait_for("B's balance to grow", LN_TIMEOUT, || {
        (b.outbound_sat() == 50_000 - 10_000).then_some(())
    });
    let received = b.get("/api/lightning/payments").1;
    assert_eq!(received[0]["inbound"], true);
    assert_eq!(received[0]["status"], "succeeded");
    assert_eq!(received[0]["amount_msat"], 50_000_000);

    // B pays A back.
    let a_before = a.outbound_sat();
    let (code, payment) = b.pay(&a.invoice(Some(20_000_000), "change"), None);
    assert_eq!(code, 200, "{payment}");
    assert!(paid(&payment));
    wait_for("A's balance to grow", LN_TIMEOUT, || {
        (a.outbound_sat() == a_before + 20_000).then_some(())
    });

    // Keysend, and an invoice without an amount.
    let (code, payment) = a.post(
        "/api/lightning/keysend",
        json!({"node_id": b.node_id(), "amount_msat": 1_000_000}),
    );
    assert_eq!(code, 200, "{payment}");
    assert!(paid(&payment));
    assert_eq!(payment["kind"], "keysend");
    let any = b.invoice(None, "tip jar");
    let (code, answer) = a.pay(&any, None);
    assert_eq!(code, 400, "an amountless invoice needs an amount: {answer}");
    assert_eq!(answer["kind"], "invalid_input");
    let (code, payment) = a.pay(&any, Some(7_000_000));
    assert_eq!(code, 200, "{payment}");
    assert!(paid(&payment));
    assert_eq!(payment["amount_msat"], 7_000_000);

    // Refusals: nothing leaves A's channel.
    let before = a.outbound_sat();
    let cases = [
        (expired_invoice(), None, 400, "invoice_expired"),
        (
            "lnbcrt1notaninvoice".to_string(),
            None,
            400,
            "invalid_invoice",
        ),
        (invoice.clone(), None, 409, "already_paid"),
        (
            foreign_invoice(5_000_000_000, 0, "a car"),
            None,
            422,
            "insufficient_funds",
        ),
    ];
    for (invoice, amount, status, kind) in cases {
        let (code, answer) = a.pay(&invoice, amount);
        assert_eq!(code, status, "{kind}: {answer}");
        assert_eq!(answer["kind"], kind, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().len() > 20,
            "a message that explains"
        );
    }
    let own = a.invoice(Some(1_000_000), "to myself");
    let (code, answer) = a.pay(&own, None);
    assert_eq!(
        (code, answer["kind"].as_str()),
        (400, Some("invalid_input")),
        "{answer}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(a.outbound_sat(), before, "refused payments move no money");
    let sent: Vec<Value> = a
        .get("/api/lightning/payments")
        .1
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        sent.iter().filter(|p| p["inbound"] == false).count(),
        3,
        "exactly the three payments A made: {sent:?}"
    );
}

#[test]
fn on_chain_funds_can_be_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let a = LnBox::start(&dir.path().join("a"), &chain);
    let b = LnBox::start(&dir.path().join("b"), &chain);
    a.fund(&chain);
    let (code, answer) = a.post(
        "/api/lightning/withdraw",
        json!({"address": "bc1qnotanaddressatall", "amount_sat": 1000}),
    );
    assert_eq!(code, 400, "{answer}");
    let (code, answer) = a.post(
        "/api/lightning/withdraw",
        json!({"address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "amount_sat": 1000}),
    );
    assert_eq!(code, 400, "a mainnet address on regtest: {answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("another network"));

    let (code, sent) = a.post(
        "/api/lightning/withdraw",
        json!({"address": b.onchain_address(), "amount_sat": 123_456}),
    );
    assert_eq!(
        (code, sent["kind"].as_str()),
        (401, Some("reauth_required")),
        "sending money away needs the password again: {sent}"
    );
    let (code, sent) = a.post(
        "/api/lightning/withdraw",
        json!({"address": b.onchain_address(), "amount_sat": 123_456, "password": PASSWORD}),
    );
    assert_eq!(code, 200, "{sent}");
    assert_eq!(sent["txid"].as_str().map(str::len), Some(64));
    wait_for("the withdrawal in the mempool", LN_TIMEOUT, || {
        (chain.mempool_size() > 0).then_some(())
    });
    chain.mine(1);
    wait_for("B to receive it", LN_TIMEOUT, || {
        let _ = b.node.api("POST", "/api/lightning/sync", Some("{}"));
        (b.balances()["onchain_sat"] == 123_456).then_some(())
    });
}

#[test]
fn cooperative_close_pays_out_on_chain_and_force_close_sweeps_after_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let a = LnBox::start(&dir.path().join("a"), &chain);
    let b = LnBox::start(&dir.path().join("b"), &chain);
    a.fund(&chain);

    // Cooperative close: A's side comes back to its wallet, less the closing fee.
    open_channel(&chain, &a, &b, 500_000, 100_000_000);
    let onchain_before = a.balances()["onchain_sat"].as_u64().unwrap();
    let ours = a.channels()[0]["outbound_sat"].as_u64().unwrap();
    // Closed by the id the channel list shows (the force close below uses LDK's
    // user_channel_id, which the page sends); anything else is named.
    let (code, answer) = a.post("/api/lightning/channels/not-an-id/close", json!({}));
    assert_eq!(
        (code, answer["kind"].as_str()),
        (400, Some("invalid_input"))
    );
    assert!(
        answer["error"].as_str().unwrap().contains("64 hex digits"),
        "{answer}"
    );
    let id = a.channels()[0]["channel_id"].as_str().unwrap().to_string();
    let (code, answer) = a.post(&format!("/api/lightning/channels/{id}/close"), json!({}));
    assert_eq!(code, 200, "{answer}");
    wait_for("the closing transaction", LN_TIMEOUT, || {
        (chain.mempool_size() > 0).then_some(())
    });
    chain.mine(6);
    wait_for(
        "the channel to be gone and the funds on-chain",
        LN_TIMEOUT,
        || {
            let _ = a.node.api("POST", "/api/lightning/sync", Some("{}"));
            let onchain = a.balances()["onchain_sat"].as_u64().unwrap();
            (a.channels().is_empty() && onchain > onchain_before + ours - 10_000).then_some(())
        },
    );
    let (code, answer) = a.post(&format!("/api/lightning/channels/{id}/close"), json!({}));
    assert_eq!(
        (code, answer["kind"].as_str()),
        (404, Some("channel_not_found"))
    );

    // Force close: our funds wait for the channel's delay, then are swept to the wallet.
    open_channel(&chain, &a, &b, 400_000, 0);
    let onchain_before = a.balances()["onchain_sat"].as_u64().unwrap();
    let id = a.channels()[0]["user_channel_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, answer) = a.post(
        &format!("/api/lightning/channels/{id}/close"),
        json!({"force": true}),
    );
    assert_eq!(
        (code, answer["kind"].as_str()),
        (401, Some("reauth_required")),
        "a force close needs the password again: {answer}"
    );
    a.node.reauth();
    let (code, answer) = a.post(
        &format!("/api/lightning/channels/{id}/close"),
        json!({"force": true}),
    );
    assert_eq!(code, 200, "{answer}");
    wait_for("the commitment transaction", LN_TIMEOUT, || {
        (chain.mempool_size() > 0).then_some(())
    });
    chain.mine(1);
    wait_for("the funds to show as pending", LN_TIMEOUT, || {
        (a.balances()["pending_sat"].as_u64().unwrap() > 300_000).then_some(())
    });
    // LDK's default delay is 144 blocks; mine past it in steps so the sweep is broadcast.
    for _ in 0..16 {
        chain.mine(10);
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_for("the sweep to be broadcast", LN_TIMEOUT, || {
        (chain.mempool_size() > 0).then_some(())
    });
    chain.mine(6);
    wait_for("the swept funds in A's wallet", LN_TIMEOUT, || {
        let _ = a.node.api("POST", "/api/lightning/sync", Some("{}"));
        let onchain = a.balances()["onchain_sat"].as_u64().unwrap();
        (onchain > onchain_before + 390_000).then_some(())
    });
}

#[test]
fn kill_9_right_after_a_payment_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let mut a = LnBox::start(&dir.path().join("a"), &chain);
    let mut b = LnBox::start(&dir.path().join("b"), &chain);
    a.fund(&chain);
    open_channel(&chain, &a, &b, 1_000_000, 0);
    let onchain_before = a.balances()["onchain_sat"].as_u64().unwrap();

    // A sends, and is killed while the payment is on its way.
    let invoice = b.invoice(Some(30_000_000), "interrupted");
    let token = a.node.token().unwrap();
    let web = a.node.web;
    let body = json!({"invoice": invoice}).to_string();
    let sender = std::thread::spawn(move || {
        http_with_token(web, "POST", "/api/lightning/pay", Some(&body), Some(&token))
    });
    std::thread::sleep(Duration::from_millis(150));
    a.node.signal(nix::sys::signal::Signal::SIGKILL);
    a.node.wait_exit(TIMEOUT);
    let _ = sender.join();

    // B restarts too (cleanly); then A comes back.
    b.node.signal(nix::sys::signal::Signal::SIGTERM);
    b.node.wait_exit(TIMEOUT);
    b.restart();
    a.restart();

    // Either the channel resumes, or (when the kill fell between a channel-monitor update
    // and the channel manager's next save) LDK closes it on start by its rule for a
    // manager older than its monitors. Either way no payment is lost or doubled.
    if a.wait_channel_resumed_or_closed_by_rule() {
        the_channel_resumed_and_paid_once(&a, &b);
    } else {
        the_funds_came_back_on_chain(&chain, &a, &b, onchain_before, 1_000_000);
    }
}

/// What `a` paid out (msat) and in how many payments, once none is pending any more.
fn settled_outbound(a: &LnBox) -> Option<(usize, u64)> {
    let payments = a.get("/api/lightning/payments").1;
    let outbound: Vec<&Value> = payments
        .as_array()?
        .iter()
        .filter(|p| p["inbound"] == false)
        .collect();
    if outbound.iter().any(|p| p["status"] == "pending") {
        return None;
    }
    let succeeded: Vec<&&Value> = outbound
        .iter()
        .filter(|p| p["status"] == "succeeded")
        .collect();
    let msat = succeeded
        .iter()
        .map(|p| p["amount_msat"].as_u64().unwrap())
        .sum();
    Some((succeeded.len(), msat))
}

/// What `b` received (msat) and in how many payments, checked never doubled: each
/// payment hash arrives at most once.
fn arrived_once(b: &LnBox) -> (usize, u64) {
    let received = b.get("/api/lightning/payments").1;
    let arrived: Vec<&Value> = received
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["inbound"] == true && p["status"] == "succeeded")
        .collect();
    let hashes: std::collections::HashSet<&Value> =
        arrived.iter().map(|p| &p["payment_hash"]).collect();
    assert_eq!(hashes.len(), arrived.len(), "never doubled: {received}");
    let msat = arrived
        .iter()
        .map(|p| p["amount_msat"].as_u64().unwrap())
        .sum();
    (arrived.len(), msat)
}

fn the_channel_resumed_and_paid_once(a: &LnBox, b: &LnBox) {
    b.wait_channel_usable();
    let (sent_ok, _) = wait_for("the interrupted payment to settle", LN_TIMEOUT, || {
        settled_outbound(a)
    });
    let (arrived, _) = arrived_once(b);
    assert!(arrived <= 1, "the interrupted payment arrived at most once");
    assert_eq!(arrived, sent_ok, "A and B agree on what was paid");
    let expected_outbound = 1_000_000 - 30_000 * arrived as u64;
    let outbound = a.outbound_sat();
    assert!(
        outbound <= expected_outbound && outbound + 20_000 > expected_outbound,
        "A's side matches what was paid ({outbound} vs {expected_outbound} before reserve)"
    );

    // And the channel works again, both ways.
    let (code, payment) = a.pay(&b.invoice(Some(5_000_000), "after"), None);
    assert_eq!(code, 200, "{payment}");
    assert!(paid(&payment));
    let (code, payment) = b.pay(&a.invoice(Some(1_000_000), "back"), None);
    assert_eq!(code, 200, "{payment}");
    assert!(paid(&payment));
}

/// After LDK closed A's channel (of `channel_sat`, all A's at the start) on start: the
/// alert says so, and A's side, minus exactly what B received, comes back to A's wallet.
fn the_funds_came_back_on_chain(
    chain: &Chain,
    a: &LnBox,
    b: &LnBox,
    onchain_before: u64,
    channel_sat: u64,
) {
    let kinds: Vec<Value> = a.status()["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["kind"].clone())
        .collect();
    assert!(
        kinds.contains(&json!("channel_closed_on_start")),
        "{kinds:?}"
    );
    // The commitment, the HTLC's timeout or claim, and our side after the channel's delay
    // (twice for an HTLC we take back): mine in steps until all of it is in A's wallet.
    let deadline = std::time::Instant::now() + LN_TIMEOUT * 2;
    loop {
        let _ = a.node.api("POST", "/api/lightning/sync", Some("{}"));
        if let Some((_, sent_msat)) = settled_outbound(a) {
            let balances = a.balances();
            let onchain = balances["onchain_sat"].as_u64().unwrap();
            let expected = onchain_before + channel_sat - sent_msat / 1000;
            // Closing fees (1 sat/vB on regtest) stay well under 20,000 sat.
            if balances["pending_sat"] == 0 && onchain + 20_000 > expected {
                assert!(
                    onchain <= expected,
                    "{onchain} > {expected}: money from nowhere"
                );
                let (_, arrived_msat) = arrived_once(b);
                assert_eq!(arrived_msat, sent_msat, "A and B agree on what was paid");
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "A's funds never came back on-chain: {} {}",
            a.balances(),
            a.get("/api/lightning/payments").1
        );
        chain.mine(10);
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_channel_manager_older_than_its_monitors_closes_the_channel_and_loses_nothing() {
    // What a power cut between a channel-monitor update and the channel manager's next
    // save leaves behind, made on purpose: the manager from before the last payment.
    use ldk_node::lightning::util::persist::KVStoreSync;
    use plugnode::lightning::store::ChannelStore;
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let mut a = LnBox::start(&dir.path().join("a"), &chain);
    let b = LnBox::start(&dir.path().join("b"), &chain);
    a.fund(&chain);
    open_channel(&chain, &a, &b, 1_000_000, 0);
    let onchain_before = a.balances()["onchain_sat"].as_u64().unwrap();
    assert!(paid(&a.pay(&b.invoice(Some(20_000_000), "first"), None).1));

    let lightning_dir = a.config.data_dir().join("lightning");
    let stop = |a: &mut LnBox| {
        a.node.signal(nix::sys::signal::Signal::SIGTERM);
        a.node.wait_exit(TIMEOUT);
    };
    stop(&mut a);
    let old_manager = ChannelStore::open(&lightning_dir)
        .unwrap()
        .read("", "", "manager")
        .unwrap();
    a.restart();
    a.wait_channel_usable();
    assert!(paid(&a.pay(&b.invoice(Some(30_000_000), "second"), None).1));
    stop(&mut a);
    ChannelStore::open(&lightning_dir)
        .unwrap()
        .write("", "", "manager", old_manager)
        .unwrap();

    a.restart();
    a.wait("LDK to close the channel by its rule", || {
        (a.status()["lightning"]["force_closed_on_start"] != 0).then_some(())
    });
    the_funds_came_back_on_chain(&chain, &a, &b, onchain_before, 1_000_000);
}

#[test]
fn bolt12_offers_are_made_and_paid() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let a = LnBox::start(&dir.path().join("a"), &chain);
    let b = LnBox::start(&dir.path().join("b"), &chain);
    a.fund(&chain);
    // Without a channel there is no path to offer (found by schemathesis: it was a 500).
    let (code, answer) = b.post(
        "/api/lightning/offers",
        json!({"amount_msat": null, "description": ""}),
    );
    assert_eq!(
        (code, answer["kind"].as_str()),
        (409, Some("no_inbound_capacity")),
        "{answer}"
    );
    open_channel(&chain, &a, &b, 800_000, 0);

    let (code, answer) = b.post(
        "/api/lightning/offers",
        json!({"amount_msat": null, "description": "tips"}),
    );
    assert_eq!(code, 200, "{answer}");
    let offer = answer["offer"].as_str().unwrap().to_string();
    assert!(offer.starts_with("lno"), "{offer}");

    let (code, answer) = a.pay(&offer, None);
    assert_eq!(code, 400, "an offer without an amount needs one: {answer}");
    let (code, payment) = a.pay(&offer, Some(12_000_000));
    assert_eq!(code, 200, "{payment}");
    assert!(paid(&payment), "{payment}");
    assert_eq!(payment["kind"], "bolt12");
    b.wait("B to see the offer paid", || {
        let payments = b.get("/api/lightning/payments").1;
        payments
            .as_array()?
            .iter()
            .any(|p| p["inbound"] == true && p["status"] == "succeeded" && p["kind"] == "bolt12")
            .then_some(())
    });

    // Scanned (capitals, a scheme in any case) or in a bitcoin: link, the offer decodes
    // and pays as pasted; so does an invoice in a bitcoin: link.
    let address = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    let invoice = b.invoice(Some(4_000_000), "in a link");
    let forms = [
        (format!("lightning:{}", offer.to_uppercase()), "bolt12"),
        (format!("LIGHTNING:{offer}"), "bolt12"),
        (
            format!("bitcoin:{address}?amount=0.00003&lightning={offer}"),
            "bolt12",
        ),
        (
            format!(
                "BITCOIN:{}?AMOUNT=0.00004&LIGHTNING={}",
                address.to_uppercase(),
                invoice.to_uppercase()
            ),
            "bolt11",
        ),
    ];
    for (text, kind) in forms {
        let (code, decoded) = a.post("/api/lightning/decode", json!({ "text": text }));
        assert_eq!(
            (code, decoded["kind"].as_str()),
            (200, Some(kind)),
            "{decoded}"
        );
        let amount = (kind == "bolt12").then_some(3_000_000);
        let (code, payment) = a.pay(&text, amount);
        assert_eq!(code, 200, "{text:.50}: {payment}");
        assert!(paid(&payment), "{payment}");
        assert_eq!(payment["kind"], kind, "{payment}");
    }

    // An offer for another chain, or expired, is refused as an invoice would be, before
    // anything is sent (LDK would record a failed payment and answer with no reason).
    let outbound = |a: &LnBox| {
        let payments = a.get("/api/lightning/payments").1;
        payments
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["inbound"] == false)
            .count()
    };
    let sent_before = outbound(&a);
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    use ldk_node::bitcoin::Network;
    let refusals = [
        (
            foreign_offer(Network::Bitcoin, None),
            "invalid_invoice",
            "mainnet",
        ),
        (
            foreign_offer(Network::Regtest, Some(an_hour_ago)),
            "invoice_expired",
            "expired",
        ),
    ];
    for (text, kind, says) in refusals {
        for text in [text.clone(), format!("lightning:{text}")] {
            let (code, answer) = a.pay(&text, None);
            assert_eq!(
                (code, answer["kind"].as_str()),
                (400, Some(kind)),
                "{answer}"
            );
            let message = answer["error"].as_str().unwrap();
            assert!(
                message.contains(says) && message.contains("Nothing was sent"),
                "{message}"
            );
        }
    }
    assert_eq!(
        outbound(&a),
        sent_before,
        "refused offers leave no payment behind"
    );
}

/// The Lightning node's RPC password refused by bitcoind (another bitcoind on the port,
/// a hand-edited bitcoin.conf): a clear failure in the status, not a silent retry loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_rpc_password_is_a_clear_failure() {
    use plugnode::bitcoind::RpcUser;
    use plugnode::config::{GossipSetting, Network};
    use plugnode::lightning::store::ChannelStore;
    use plugnode::lightning::{LightningHandle, LightningSettings};
    use plugnode::secret::Secret;
    use plugnode::status::{BitcoindState, LightningState, StatusHandle};

    let dir = tempfile::tempdir().unwrap();
    let chain = tokio::task::block_in_place(|| Chain::start(dir.path()));
    let status = StatusHandle::new();
    status.update(|s| s.bitcoind.state = BitcoindState::Ready);
    let lightning = LightningHandle::spawn(
        LightningSettings {
            enabled: true,
            network: Network::Regtest,
            storage_dir: dir.path().join("lightning"),
            secrets_dir: dir.path().join("secrets"),
            listen_address: ([127, 0, 0, 1], free_port()).into(),
            alias: None,
            gossip: GossipSetting::P2p,
            rpc_port: chain.sim.rpc_port(),
            rpc_user: RpcUser {
                name: "lightning".into(),
                password: Secret::new("not the password"),
            },
            lsp: None,
            lsp_fee_limit: Default::default(),
            lsp_service: None,
        },
        status.clone(),
        ChannelStore::open(&dir.path().join("lightning")).unwrap(),
    );
    lightning.create_seed().unwrap();
    let mut updates = status.subscribe();
    let failed = tokio::time::timeout(
        LN_TIMEOUT,
        updates.wait_for(|s| matches!(s.lightning.state, LightningState::Failed { .. })),
    )
    .await
    .expect("a failure, not a silent retry loop")
    .unwrap()
    .clone();
    let LightningState::Failed { message } = &failed.lightning.state else {
        unreachable!()
    };
    assert!(
        message.contains("rejected") && message.contains("RPC password"),
        "{message}"
    );
    assert!(failed
        .alerts()
        .iter()
        .any(|a| a.kind == plugnode::status::AlertKind::LightningFailed));
    lightning.stop().await;
}
