//! Nostr Wallet Connect end to end: a box paired with rust-nostr's own NWC client (the
//! `nwc` crate, written independently of our service) through its embedded relay, and a
//! raw Nostr client for NIP-44 and for requests a well-behaved app never sends. A second
//! box is the other side of every payment.

mod common;

use common::lightning::*;
use common::pairing::*;
use common::*;
use nostr_sdk::prelude::*;
use serde_json::{json, Value};
use tokio::task::block_in_place;

/// Box A (with the wallet service) and box B, with a channel A→B that gives B enough to
/// pay A back.
fn two_boxes(dir: &std::path::Path, pairing: TestPairing) -> (Chain, LnBox, LnBox) {
    let chain = Chain::start(dir);
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| {
            let mut config = TestConfig::lightning_box(&dir.join("a"), &chain.sim);
            config.pairing = Some(pairing);
            LnBox::start_with(config).0
        });
        let b = scope.spawn(|| LnBox::start(&dir.join("b"), &chain));
        (a.join().unwrap(), b.join().unwrap())
    });
    a.fund(&chain);
    open_channel(&chain, &a, &b, 1_000_000, 300_000_000);
    (chain, a, b)
}

/// Payments B received, by payment hash.
fn received_by(b: &LnBox, hash: &str) -> Vec<Value> {
    let (code, payments) = b.get("/api/lightning/payments");
    assert_eq!(code, 200, "{payments}");
    payments
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["inbound"] == true && p["payment_hash"] == hash && p["status"] == "succeeded")
        .cloned()
        .collect()
}

fn hash_of(bolt11: &str) -> String {
    use std::str::FromStr;
    ldk_node::lightning_invoice::Bolt11Invoice::from_str(bolt11)
        .unwrap()
        .payment_hash()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paired_app_receives_pays_keysends_and_stops_at_its_budget_and_its_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let (_chain, a, b) = block_in_place(|| two_boxes(dir.path(), TestPairing::both()));
    let paired = block_in_place(|| pair_spender(&a, 30_000, "daily"));
    assert!(
        paired.uri.starts_with("nostr+walletconnect://"),
        "{}",
        paired.uri
    );
    let app = nwc_client(&paired.uri);
    let raw = RawApp::from_uri(&paired.uri).await;

    // get_info (raw: the nwc crate's parser knows no get_budget, which we list).
    let info = raw.call(Cipher::Nip44, "get_info", json!({})).await;
    assert_eq!(info["result_type"], "get_info", "{info}");
    assert_eq!(info["result"]["pubkey"], a.node_id());
    assert_eq!(info["result"]["network"], "regtest");
    let methods: Vec<&str> = info["result"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for method in [
        "pay_invoice",
        "make_invoice",
        "get_budget",
        "list_transactions",
    ] {
        assert!(methods.contains(&method), "{info}");
    }

    // The balance an app sees is what it may spend: here its budget.
    let balance = app.get_balance().await.unwrap();
    assert_eq!(balance, 30_000_000);

    // Receive: the app makes an invoice, B pays it, the app is told.
    app.subscribe_to_notifications().await.unwrap();
    let (told_tx, mut told) = tokio::sync::mpsc::unbounded_channel();
    let listener = app.clone();
    tokio::spawn(async move {
        let _ = listener
            .handle_notifications(move |n| {
                let told_tx = told_tx.clone();
                async move {
                    let _ = told_tx.send(n);
                    Ok(false)
                }
            })
            .await;
    });
    let made = app
        .make_invoice(nostr_sdk::nips::nip47::MakeInvoiceRequest {
            amount: 21_000_000,
            description: Some("for the app".into()),
            description_hash: None,
            expiry: Some(600),
        })
        .await
        .unwrap();
    let (code, paid) = block_in_place(|| b.pay(&made.invoice, None));
    assert_eq!(code, 200, "{paid}");
    let notification = tokio::time::timeout(LN_TIMEOUT, told.recv())
        .await
        .expect("a payment_received notification")
        .unwrap();
    assert_eq!(
        notification.notification_type,
        nostr_sdk::nips::nip47::NotificationType::PaymentReceived
    );
    let looked_up = app
        .lookup_invoice(nostr_sdk::nips::nip47::LookupInvoiceRequest {
            payment_hash: made.payment_hash.clone(),
            invoice: None,
        })
        .await
        .unwrap();
    assert_eq!(
        looked_up.state,
        Some(nostr_sdk::nips::nip47::TransactionState::Settled)
    );
    assert_eq!(looked_up.amount, 21_000_000);
    assert!(looked_up.preimage.is_some());

    // Pay: an invoice of B, within the budget.
    let invoice = block_in_place(|| b.invoice(Some(10_000_000), "from the app"));
    let sent = app
        .pay_invoice(nostr_sdk::nips::nip47::PayInvoiceRequest::new(
            invoice.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(sent.preimage.len(), 64);
    assert_eq!(
        block_in_place(|| received_by(&b, &hash_of(&invoice))).len(),
        1
    );
    let sent_told = tokio::time::timeout(LN_TIMEOUT, told.recv())
        .await
        .expect("a payment_sent notification")
        .unwrap();
    assert_eq!(
        sent_told.notification_type,
        nostr_sdk::nips::nip47::NotificationType::PaymentSent
    );

    // Keysend to B.
    let keysent = app
        .pay_keysend(nostr_sdk::nips::nip47::PayKeysendRequest {
            id: None,
            amount: 5_000_000,
            pubkey: b.node_id(),
            preimage: None,
            tlv_records: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(keysent.preimage.len(), 64);

    // The app's own list: its invoice and its two payments, nothing of the owner's.
    let listed = app
        .list_transactions(nostr_sdk::nips::nip47::ListTransactionsRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");

    // The budget counts amounts and fees; the page shows the same.
    let budget = raw.call(Cipher::Nip04, "get_budget", json!({})).await;
    let used = budget["result"]["used_budget"].as_u64().unwrap();
    assert!((15_000_000..15_200_000).contains(&used), "{budget}");
    assert_eq!(budget["result"]["total_budget"], 30_000_000);
    assert_eq!(budget["result"]["renewal_period"], "daily");
    let shown = block_in_place(|| connection(&a, &paired.id));
    assert_eq!(
        shown["used_sat"].as_u64().unwrap(),
        used.div_ceil(1000),
        "{shown}"
    );
    assert!(shown["renews_at"].as_u64().is_some());
    assert!(shown["last_used_at"].as_u64().is_some());

    // Over the budget: refused before anything is sent.
    let too_much = block_in_place(|| b.invoice(Some(20_000_000), "too much"));
    let refused = raw
        .call(Cipher::Nip44, "pay_invoice", json!({ "invoice": too_much }))
        .await;
    assert_eq!(refused["error"]["code"], "QUOTA_EXCEEDED", "{refused}");
    assert!(block_in_place(|| received_by(&b, &hash_of(&too_much))).is_empty());
    assert_eq!(
        block_in_place(|| connection(&a, &paired.id))["used_sat"],
        shown["used_sat"]
    );

    // Zeus's empty lookup gets an error that says what is missing; unknown methods too.
    let empty = raw.call(Cipher::Nip04, "lookup_invoice", json!({})).await;
    assert_eq!(empty["error"]["code"], "OTHER", "{empty}");
    let unknown = raw.call(Cipher::Nip44, "sign_message", json!({})).await;
    assert_eq!(unknown["error"]["code"], "NOT_IMPLEMENTED", "{unknown}");

    // Revoked: refused at once.
    let (code, _) = block_in_place(|| {
        a.node
            .api(
                "DELETE",
                &format!("/api/pairing/connections/{}", paired.id),
                None,
            )
            .unwrap()
    });
    assert_eq!(code, 200);
    let after = raw.call(Cipher::Nip44, "get_balance", json!({})).await;
    assert_eq!(after["error"]["code"], "UNAUTHORIZED", "{after}");
    let status = block_in_place(|| a.status());
    assert_eq!(status["pairing"]["active_connections"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_payments_never_exceed_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (_chain, a, b) = block_in_place(|| two_boxes(dir.path(), TestPairing::both()));
    // 5 000 sat each, reserved with its fee limit (1 % + 50 sat = 100 sat): nine fit.
    let paired = block_in_place(|| pair_spender(&a, 50_000, "never"));
    let app = nwc_client(&paired.uri);
    let invoices: Vec<String> = block_in_place(|| {
        (0..20)
            .map(|i| b.invoice(Some(5_000_000), &format!("parallel {i}")))
            .collect()
    });
    let payments = invoices.iter().map(|invoice| {
        let app = app.clone();
        let invoice = invoice.clone();
        tokio::spawn(async move {
            app.pay_invoice(nostr_sdk::nips::nip47::PayInvoiceRequest::new(invoice))
                .await
        })
    });
    let mut paid = 0;
    let mut quota = 0;
    for payment in payments.collect::<Vec<_>>() {
        match payment.await.unwrap() {
            Ok(_) => paid += 1,
            Err(nwc::Error::NIP47(nostr_sdk::nips::nip47::Error::ErrorCode(e)))
                if e.code == nostr_sdk::nips::nip47::ErrorCode::QuotaExceeded =>
            {
                quota += 1
            }
            Err(other) => panic!("unexpected answer: {other}"),
        }
    }
    eprintln!("{paid} paid, {quota} refused over the budget");
    assert_eq!(paid + quota, 20);
    assert!(
        paid <= 9,
        "{paid} payments of 5 000 sat fit in a budget of 50 000 sat"
    );
    let received: usize = block_in_place(|| {
        invoices
            .iter()
            .map(|invoice| received_by(&b, &hash_of(invoice)).len())
            .sum()
    });
    assert_eq!(received, paid);
    let shown = block_in_place(|| connection(&a, &paired.id));
    assert!(shown["used_sat"].as_u64().unwrap() <= 50_000, "{shown}");
}

fn stop_cleanly(ln: &mut LnBox) {
    ln.node.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(ln.node.wait_exit(TIMEOUT).success(), "{}", ln.node.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_never_execute_and_requests_sent_while_the_box_was_away_are_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let relay = common::relay::KeepingRelay::start().await;
    let relay_url = relay.url.clone();
    let pairing = TestPairing {
        relay_port: None,
        lndhub_port: None,
        relays: vec![relay_url.clone()],
    };
    let (_chain, mut a, b) = block_in_place(|| two_boxes(dir.path(), pairing));
    let paired = block_in_place(|| pair_spender(&a, 100_000, "never"));
    let app = RawApp::from_uri(&paired.uri).await;
    let service = app.service;
    let relays = [RelayUrl::parse(&relay_url).unwrap()];

    // NIP-44 works end to end (the answer decrypts with NIP-44).
    let balance = app.call(Cipher::Nip44, "get_balance", json!({})).await;
    assert_eq!(balance["result"]["balance"], 100_000_000, "{balance}");

    // A receive-only app may not pay.
    let receiver = block_in_place(|| {
        pair(
            &a,
            json!({"app": "Till", "protocol": "nwc", "permissions": ["receive"]}),
        )
    });
    let till = RawApp::from_uri(&receiver.uri).await;
    let invoice = block_in_place(|| b.invoice(Some(1_000_000), "till"));
    let refused = till
        .call(Cipher::Nip04, "pay_invoice", json!({ "invoice": invoice }))
        .await;
    assert_eq!(refused["error"]["code"], "RESTRICTED", "{refused}");

    // Requests that must never run: each would pay an invoice of B's.
    let mut never_paid = Vec::new();
    let mut never_answered = Vec::new();
    // A key the box never paired.
    let stranger = RawApp::with_keys(Keys::generate(), service, &relays).await;
    let invoice = block_in_place(|| b.invoice(Some(2_000_000), "stranger"));
    let event = stranger.request(
        Cipher::Nip44,
        &json!({"method": "pay_invoice", "params": {"invoice": invoice}}),
        vec![],
    );
    stranger.client.send_event(&event).await.unwrap();
    never_paid.push(invoice);
    never_answered.push(event.id);
    // Encrypted to another key than the box's: cannot be read, so not answered either.
    let invoice = block_in_place(|| b.invoice(Some(2_000_000), "wrong key"));
    let body = json!({"method": "pay_invoice", "params": {"invoice": invoice}}).to_string();
    let content = nip44::encrypt(
        app.keys.secret_key(),
        &Keys::generate().public_key(),
        body,
        nip44::Version::V2,
    )
    .unwrap();
    let event = EventBuilder::new(Kind::WalletConnectRequest, content)
        .tags([
            Tag::public_key(service),
            Tag::custom(TagKind::custom("encryption"), ["nip44_v2"]),
        ])
        .sign_with_keys(&app.keys)
        .unwrap();
    app.client.send_event(&event).await.unwrap();
    never_paid.push(invoice);
    never_answered.push(event.id);
    // Expired (NIP-40) before it arrived.
    let invoice = block_in_place(|| b.invoice(Some(2_000_000), "expired"));
    let event = app.request(
        Cipher::Nip44,
        &json!({"method": "pay_invoice", "params": {"invoice": invoice}}),
        vec![Tag::expiration(Timestamp::from(
            Timestamp::now().as_secs() - 1,
        ))],
    );
    app.client.send_event(&event).await.unwrap();
    never_paid.push(invoice);
    never_answered.push(event.id);
    // Forged: a paired app's request with its content swapped (the signature no longer
    // matches); the relay refuses it, and the box would too.
    let invoice = block_in_place(|| b.invoice(Some(2_000_000), "forged"));
    let mut forged = app.request(
        Cipher::Nip44,
        &json!({"method": "get_info", "params": {}}),
        vec![],
    );
    forged.content = nip44::encrypt(
        app.keys.secret_key(),
        &service,
        json!({"method": "pay_invoice", "params": {"invoice": invoice}}).to_string(),
        nip44::Version::V2,
    )
    .unwrap();
    let _ = app.client.send_event(&forged).await;
    never_paid.push(invoice);
    never_answered.push(forged.id);

    // A good payment, answered once.
    let invoice = block_in_place(|| b.invoice(Some(3_000_000), "once"));
    let once = app.request(
        Cipher::Nip04,
        &json!({"method": "pay_invoice", "params": {"invoice": invoice}}),
        vec![],
    );
    let answer = app
        .send(&once, Cipher::Nip04, LN_TIMEOUT)
        .await
        .expect("an answer");
    assert!(answer["result"]["preimage"].is_string(), "{answer}");

    // The box goes away; meanwhile the app sends a payment and the old one again.
    block_in_place(|| stop_cleanly(&mut a));
    let late_invoice = block_in_place(|| b.invoice(Some(4_000_000), "while away"));
    let late = app.request(
        Cipher::Nip44,
        &json!({"method": "pay_invoice", "params": {"invoice": late_invoice}}),
        vec![],
    );
    let waiting = {
        let filter = Filter::new()
            .kind(Kind::WalletConnectResponse)
            .author(service)
            .event(late.id);
        app.client
            .pool()
            .stream_events(filter, LN_TIMEOUT * 2, ReqExitPolicy::WaitForEvents(1))
            .await
            .unwrap()
    };
    app.client.send_event(&late).await.unwrap();
    let _ = app.client.send_event(&once).await;
    block_in_place(|| {
        a.restart();
        a.wait_channel_usable();
    });
    let mut waiting = waiting;
    let late_answer = {
        use nostr_sdk::async_utility::futures_util::StreamExt;
        waiting.next().await.unwrap_or_else(|| {
            panic!(
                "the request sent while away was not answered; box log:\n{}",
                a.node.log()
            )
        })
    };
    let late_answer = app.open(&late_answer, Cipher::Nip44);
    assert!(
        late_answer["result"]["preimage"].is_string(),
        "{late_answer}"
    );
    assert_eq!(
        block_in_place(|| received_by(&b, &hash_of(&late_invoice))).len(),
        1
    );

    // The replayed request ran once: one payment, one answer.
    assert_eq!(
        block_in_place(|| received_by(&b, &hash_of(&invoice))).len(),
        1
    );
    assert_eq!(app.answers_to(&once.id).await.len(), 1);
    // A fresh request after all that is still answered.
    let info = app.call(Cipher::Nip44, "get_info", json!({})).await;
    assert!(info["result"]["pubkey"].is_string(), "{info}");
    // None of the bad requests ran or got an answer, long after they were sent.
    for invoice in &never_paid {
        assert!(block_in_place(|| received_by(&b, &hash_of(invoice))).is_empty());
    }
    for id in &never_answered {
        assert!(app.answers_to(id).await.is_empty(), "{id} was answered");
    }
    let shown = block_in_place(|| connection(&a, &paired.id));
    assert_eq!(shown["used_sat"], 7_000, "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_in_flight_across_a_kill_9_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_chain, mut a, b) = block_in_place(|| two_boxes(dir.path(), TestPairing::both()));
    let paired = block_in_place(|| pair_spender(&a, 100_000, "never"));
    let app = RawApp::from_uri(&paired.uri).await;
    let invoice = block_in_place(|| b.invoice(Some(20_000_000), "in flight"));
    let hash = hash_of(&invoice);

    // B freezes: A's payment leaves but cannot finish.
    let b_pid = nix::unistd::Pid::from_raw(b.node.pid());
    nix::sys::signal::kill(b_pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let request = app.request(
        Cipher::Nip44,
        &json!({"method": "pay_invoice", "params": {"invoice": invoice}}),
        vec![],
    );
    app.client.send_event(&request).await.unwrap();
    let reserved = block_in_place(|| {
        a.wait("the payment to be in flight", || {
            let (_, payments) = a.get("/api/lightning/payments");
            let pending = payments
                .as_array()?
                .iter()
                .any(|p| p["payment_hash"] == hash.as_str() && p["status"] == "pending");
            let used = connection(&a, &paired.id)["used_sat"].as_u64()?;
            (pending && used > 0).then_some(used)
        })
    });
    assert_eq!(reserved, 20_250, "amount plus its fee limit is reserved");

    // A dies with the payment in flight; B wakes up; A comes back.
    block_in_place(|| {
        a.node.signal(nix::sys::signal::Signal::SIGKILL);
        a.node.wait_exit(TIMEOUT);
    });
    nix::sys::signal::kill(b_pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    block_in_place(|| a.restart());

    // The outcome settles the reservation once: spent if B got it, given back if not.
    let (outcome, used) = block_in_place(|| {
        a.wait("the payment's outcome to settle the budget", || {
            let (_, payments) = a.get("/api/lightning/payments");
            let status = payments
                .as_array()?
                .iter()
                .find(|p| p["payment_hash"] == hash.as_str())?["status"]
                .as_str()?
                .to_string();
            let used = connection(&a, &paired.id)["used_sat"].as_u64()?;
            let settled = match status.as_str() {
                "succeeded" => (20_000..=20_050).contains(&used),
                "failed" => used == 0,
                _ => false,
            };
            settled.then_some((status, used))
        })
    });
    let received = block_in_place(|| received_by(&b, &hash).len());
    match outcome.as_str() {
        "succeeded" => assert_eq!(received, 1, "paid once; {used} sat counted"),
        _ => assert_eq!(received, 0),
    }
    // No second payment, no second count, after a while more.
    let again = app.call(Cipher::Nip44, "get_budget", json!({})).await;
    assert_eq!(
        again["result"]["used_budget"]
            .as_u64()
            .unwrap()
            .div_ceil(1000),
        used
    );
}
