//! Receiving from the first minute: a box with no channel receives through a just-in-time
//! channel from a liquidity provider (ldk-node's LSPS2 service, in this process), with the
//! fee said before the invoice and kept within it; clear refusals otherwise; a kill -9
//! while the channel opens loses and doubles nothing.

mod common;

use common::lightning::*;
use common::lsp::Lsp;
use common::*;
use serde_json::{json, Value};

/// A box configured with `lsp` (and `token`), and a payer with a channel to the provider.
fn setup(
    dir: &std::path::Path,
    token: Option<&str>,
    box_token: Option<&str>,
) -> (Chain, Lsp, LnBox, LnBox) {
    setup_with(dir, token, box_token, |_| {})
}

fn setup_with(
    dir: &std::path::Path,
    token: Option<&str>,
    box_token: Option<&str>,
    change: impl FnOnce(&mut TestConfig),
) -> (Chain, Lsp, LnBox, LnBox) {
    let chain = Chain::start(dir);
    let lsp = Lsp::start(dir, &chain, token);
    let mut config = TestConfig::lightning_box(&dir.join("box"), &chain.sim);
    config.extra_toml = lsp.config(box_token);
    change(&mut config);
    let (receiver, payer) = std::thread::scope(|scope| {
        let receiver = scope.spawn(|| LnBox::start_with(config).0);
        let payer = scope.spawn(|| LnBox::start(&dir.join("payer"), &chain));
        (receiver.join().unwrap(), payer.join().unwrap())
    });
    payer.fund(&chain);
    let (code, answer) = payer.post(
        "/api/lightning/channels",
        json!({"node_id": lsp.node_id(), "address": lsp.address, "amount_sat": 3_000_000}),
    );
    assert_eq!(code, 200, "{answer}");
    wait_for("the funding transaction", LN_TIMEOUT, || {
        (chain.mempool_size() > 0).then_some(())
    });
    chain.mine(6);
    payer.wait_channel_usable();
    (chain, lsp, receiver, payer)
}

fn invoice(ln: &LnBox, amount_sat: u64, max_lsp_fee_sat: Option<u64>) -> (u16, Value) {
    ln.post(
        "/api/lightning/invoices",
        json!({
            "amount_msat": amount_sat * 1000,
            "description": "jit",
            "max_lsp_fee_sat": max_lsp_fee_sat,
        }),
    )
}

fn received(ln: &LnBox, hash: &str) -> Vec<Value> {
    let (code, payments) = ln.get("/api/lightning/payments");
    assert_eq!(code, 200, "{payments}");
    payments
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["payment_hash"] == hash && p["inbound"] == true && p["status"] == "succeeded")
        .cloned()
        .collect()
}

fn backup_generation(ln: &LnBox) -> u64 {
    ln.status()["backup"]["generation"].as_u64().unwrap_or(0)
}

#[test]
fn a_box_without_channels_receives_through_a_just_in_time_channel_within_the_fee_it_said() {
    let dir = tempfile::tempdir().unwrap();
    // Its channel updates are mirrored to a stick like any other channel's.
    let stick = common::stick::LoopStick::ext4(dir.path(), "stick", 24, &[]);
    stick.plug_in();
    let (_chain, lsp, ln, payer) = setup_with(dir.path(), None, None, |config| {
        config.backup = Some(("keep-attached", stick.link.clone()));
    });
    ln.node.wait_status("the stick to mirror", |s| {
        s["backup"]["state"]["state"] == "mirroring"
    });
    let amount = 100_000;
    let fee = Lsp::fee_sat(amount);
    let generation_before = backup_generation(&ln);

    // Nothing is contacted before the owner agrees.
    let (code, state) = ln.get("/api/lightning/lsp");
    assert_eq!(code, 200, "{state}");
    assert_eq!(state["lsp"]["agreed"], false, "{state}");
    assert_eq!(state["receivable_sat"], 0);
    assert!(lsp
        .node
        .list_peers()
        .iter()
        .all(|p| p.node_id != ln.node_id().parse().unwrap()));
    let (code, refused) = invoice(&ln, amount, None);
    assert_eq!(
        (code, refused["kind"].as_str()),
        (409, Some("lsp_not_agreed")),
        "{refused}"
    );
    let (code, _) = ln.post("/api/lightning/lsp", json!({"agree": true}));
    assert_eq!(code, 200);

    // The fee comes first; a limit below it is refused with the fee; then the invoice.
    let (code, asked) = invoice(&ln, amount, None);
    assert_eq!(
        (code, asked["kind"].as_str()),
        (409, Some("needs_channel")),
        "{asked}"
    );
    assert_eq!(asked["lsp_fee_sat"], fee, "{asked}");
    let (code, below) = invoice(&ln, amount, Some(fee - 1));
    assert_eq!(
        (code, below["lsp_fee_sat"].as_u64()),
        (409, Some(fee)),
        "{below}"
    );
    let (code, jit) = invoice(&ln, amount, Some(fee));
    assert_eq!(code, 200, "{jit}");
    assert_eq!(jit["jit"], true);
    assert_eq!(jit["max_lsp_fee_sat"], fee);
    let bolt11 = jit["bolt11"].as_str().unwrap();

    // Paid: the channel appears, the amount less the fee arrives.
    let (code, paid) = payer.pay(bolt11, None);
    assert_eq!(code, 200, "{paid}");
    let hash = jit["payment_hash"].as_str().unwrap();
    let payment = ln.wait("the payment through the new channel", || {
        received(&ln, hash).into_iter().next()
    });
    assert_eq!(payment["amount_msat"], (amount - fee) * 1000, "{payment}");
    assert_eq!(payment["lsp_fee_msat"], fee * 1000, "{payment}");
    ln.wait_channel_usable();
    let channels = ln.channels();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0]["opened_by"], "Test LSP", "{channels:?}");
    ln.wait("the stick to hold the new channel's state", || {
        let generation = backup_generation(&ln);
        let on_card = common::stick::primary_generation(&ln.config.data_dir());
        (generation == on_card && generation > generation_before).then_some(())
    });
    assert_eq!(ln.status()["backup"]["state"]["state"], "mirroring");

    // A payment that fits goes through that channel, with no other opening.
    let receivable = ln.get("/api/lightning/lsp").1["receivable_sat"]
        .as_u64()
        .unwrap();
    assert!(receivable > 2_000, "{receivable}");
    let (code, plain) = invoice(&ln, receivable / 2, None);
    assert_eq!(code, 200, "{plain}");
    assert_eq!(plain["jit"], false);
    let (code, paid) = payer.pay(plain["bolt11"].as_str().unwrap(), None);
    assert_eq!(code, 200, "{paid}");
    ln.wait("the second payment", || {
        received(&ln, plain["payment_hash"].as_str().unwrap())
            .into_iter()
            .next()
    });
    assert_eq!(ln.channels().len(), 1);
    lsp.stop();
}

#[test]
fn a_provider_that_refuses_or_is_away_gives_a_clear_error_and_no_invoice() {
    let dir = tempfile::tempdir().unwrap();
    let (_chain, lsp, ln, _payer) = setup(dir.path(), Some("right token"), Some("wrong token"));
    let (code, _) = ln.post("/api/lightning/lsp", json!({"agree": true}));
    assert_eq!(code, 200);
    // The token is refused.
    let (code, refused) = invoice(&ln, 100_000, Some(5_000));
    assert_eq!(code, 502, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("token"),
        "{refused}"
    );
    assert!(refused.get("bolt11").is_none());
    // Away.
    lsp.stop();
    let (code, away) = invoice(&ln, 100_000, Some(5_000));
    assert_eq!(code, 502, "{away}");
    assert!(
        away["error"].as_str().unwrap().contains("does not answer")
            || away["error"]
                .as_str()
                .unwrap()
                .contains("offered no channel"),
        "{away}"
    );
}

#[test]
fn more_than_the_provider_takes_and_no_provider_at_all_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _lsp, ln, _payer) = setup(dir.path(), None, None);
    ln.post("/api/lightning/lsp", json!({"agree": true}));
    let (code, refused) = invoice(&ln, common::lsp::MAX_PAYMENT_SAT * 2, Some(100_000));
    assert_eq!(code, 502, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("accepts"),
        "{refused}"
    );

    // A box with no provider says what one is and how to add one.
    let plain = LnBox::start(&dir.path().join("plain"), &chain);
    let (code, refused) = invoice(&plain, 10_000, None);
    assert_eq!(
        (code, refused["kind"].as_str()),
        (409, Some("no_inbound_capacity")),
        "{refused}"
    );
    let message = refused["error"].as_str().unwrap();
    assert!(
        message.contains("[lightning.lsp]") && message.contains("open a channel"),
        "{message}"
    );
}

#[test]
fn a_kill_9_while_the_channel_opens_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, lsp, mut ln, payer) = setup(dir.path(), None, None);
    ln.post("/api/lightning/lsp", json!({"agree": true}));
    let amount = 200_000;
    let (code, jit) = invoice(&ln, amount, Some(Lsp::fee_sat(amount)));
    assert_eq!(code, 200, "{jit}");
    let bolt11 = jit["bolt11"].as_str().unwrap().to_string();
    let hash = jit["payment_hash"].as_str().unwrap().to_string();
    let box_id: ldk_node::bitcoin::secp256k1::PublicKey = ln.node_id().parse().unwrap();

    std::thread::scope(|scope| {
        // The answer may come late (the payment waits for the box): only the outcome
        // below counts.
        let paying = scope.spawn(|| {
            let body = json!({ "invoice": bolt11 }).to_string();
            payer.node.api("POST", "/api/lightning/pay", Some(&body))
        });
        // The provider opens the channel for the payment: the box dies right then.
        wait_for("the provider to open the channel", LN_TIMEOUT, || {
            lsp.node
                .list_channels()
                .iter()
                .any(|c| c.counterparty_node_id == box_id)
                .then_some(())
        });
        ln.node.signal(nix::sys::signal::Signal::SIGKILL);
        ln.node.wait_exit(TIMEOUT);
        ln.restart();
        let _ = paying.join();
    });

    // The payer learns the outcome: paid once (channel and payment there, once), or failed
    // back (nothing arrived).
    // A payment held by the provider for a channel that never came resolves as blocks go
    // by (its HTLC times out and fails back): let time pass on the chain while waiting.
    let mut looks = 0u32;
    let outcome = payer.wait("the payer's outcome", || {
        looks += 1;
        if looks % 50 == 0 {
            chain.mine(12);
        }
        let (_, payments) = payer.get("/api/lightning/payments");
        payments
            .as_array()?
            .iter()
            .find(|p| p["payment_hash"] == hash.as_str() && p["inbound"] == false)
            .and_then(|p| p["status"].as_str())
            .filter(|s| *s != "pending")
            .map(String::from)
    });
    let arrived = ln.wait("the box to settle what it got", || {
        let arrived = received(&ln, &hash);
        match outcome.as_str() {
            "succeeded" => (arrived.len() == 1).then_some(arrived.len()),
            _ => Some(arrived.len()),
        }
    });
    match outcome.as_str() {
        "succeeded" => {
            assert_eq!(arrived, 1);
            ln.wait_channel_usable();
            assert_eq!(ln.channels().len(), 1, "one channel, not two");
        }
        _ => assert_eq!(
            arrived, 0,
            "failed back to the payer, so nothing may arrive"
        ),
    }
    lsp.stop();
}

/// Paired apps ask for invoices with nobody at the page to accept a fee: they get one
/// through a just-in-time channel within the owner's limit (`[lightning] max_lsp_fee_sat`,
/// 5 000 sat, and `max_lsp_fee_permille`, 50 ‰, by default), or a refusal that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paired_apps_get_just_in_time_invoices_within_the_owners_limit() {
    use common::lndhub::{App, ZEUS};
    use common::pairing::{nwc_client, pair};
    use nostr_sdk::nips::nip47::{LookupInvoiceRequest, MakeInvoiceRequest, TransactionState};
    use tokio::task::block_in_place;

    let dir = tempfile::tempdir().unwrap();
    let (_chain, lsp, ln, payer) = block_in_place(|| {
        setup_with(dir.path(), None, None, |config| {
            config.pairing = Some(TestPairing::both());
        })
    });
    let (code, _) = block_in_place(|| ln.post("/api/lightning/lsp", json!({"agree": true})));
    assert_eq!(code, 200);
    let alby = block_in_place(|| {
        pair(
            &ln,
            json!({"app": "Alby Go", "protocol": "nwc", "permissions": ["receive"]}),
        )
    });
    let alby = nwc_client(&alby.uri);
    let (mut zeus, _) = block_in_place(|| App::pair(&ln, "Zeus", &["receive"], None, ZEUS));
    block_in_place(|| zeus.log_in());
    let make_invoice = |amount_sat: u64| MakeInvoiceRequest {
        amount: amount_sat * 1000,
        description: Some("from an app".into()),
        description_hash: None,
        expiry: None,
    };

    // 20 000 sat would cost the provider's minimum, 2 000 sat: 100 ‰, over the 50 ‰ cap.
    let small = 20_000;
    assert!(Lsp::fee_sat(small) * 1000 > small * 50);
    let refused = alby.make_invoice(make_invoice(small)).await.unwrap_err();
    let refused = refused.to_string();
    assert!(
        refused.contains("more than the owner allows for apps") && refused.contains("2000 sat"),
        "{refused}"
    );
    let answer = block_in_place(|| {
        zeus.post(
            "/addinvoice",
            json!({"amt": small.to_string(), "memo": "small"}),
        )
    });
    let refused = answer.error(7);
    assert!(
        refused.contains("more than the owner allows for apps"),
        "{refused}"
    );
    // 200 000 sat would cost 2 000 sat: within both limits, so Zeus gets the invoice.
    let first = 200_000;
    let added = block_in_place(|| {
        zeus.post(
            "/addinvoice",
            json!({"amt": first.to_string(), "memo": "first"}),
        )
    })
    .ok();
    let (code, paid) = block_in_place(|| payer.pay(added["pay_req"].as_str().unwrap(), None));
    assert_eq!(code, 200, "{paid}");
    let hash = added["r_hash"].as_str().unwrap();
    let payment = block_in_place(|| {
        ln.wait("Zeus's payment through a new channel", || {
            received(&ln, hash).into_iter().next()
        })
    });
    let fee = Lsp::fee_sat(first);
    assert_eq!(payment["lsp_fee_msat"], fee * 1000, "{payment}");
    assert_eq!(payment["amount_msat"], (first - fee) * 1000, "{payment}");
    block_in_place(|| ln.wait_channel_usable());

    // More than that channel can take opens another one, for Alby Go's invoice.
    let receivable = block_in_place(|| ln.get("/api/lightning/lsp")).1["receivable_sat"]
        .as_u64()
        .unwrap();
    let second = 400_000;
    assert!(receivable < second, "{receivable}");
    let made = alby.make_invoice(make_invoice(second)).await.unwrap();
    let made_hash = made
        .payment_hash
        .clone()
        .expect("make_invoice names the payment hash");
    let (code, paid) = block_in_place(|| payer.pay(&made.invoice, None));
    assert_eq!(code, 200, "{paid}");
    let payment = block_in_place(|| {
        ln.wait("Alby Go's payment through a second channel", || {
            received(&ln, &made_hash).into_iter().next()
        })
    });
    let fee = Lsp::fee_sat(second);
    assert!(fee <= 5_000, "within the owner's limit: {fee}");
    assert_eq!(payment["lsp_fee_msat"], fee * 1000, "{payment}");
    let looked_up = alby
        .lookup_invoice(LookupInvoiceRequest {
            payment_hash: Some(made_hash.clone()),
            invoice: None,
        })
        .await
        .unwrap();
    assert_eq!(looked_up.state, Some(TransactionState::Settled));
    block_in_place(|| ln.wait("two channels", || (ln.channels().len() == 2).then_some(())));
    block_in_place(|| lsp.stop());
}
