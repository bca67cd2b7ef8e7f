//! The answers, in the shapes of the reference LndHub (BlueWallet/LndHub
//! `controllers/api.js` and `class/User.js`) with the fields BlueWallet
//! (`class/wallets/lightning-custodian-wallet.ts`) and Zeus (`backends/LndHub.ts`,
//! `models/Invoice.ts`, `models/Payment.ts`) read. Pure functions of our data.
//!
//! Where the reference passes lnd's own objects through (getinfo, decodeinvoice), we give
//! the lnd field names the apps use, with lnd's habit of 64-bit integers as strings.
//! Hashes and preimages are hex strings (the reference leaked some as Node `Buffer`
//! objects; the apps accept both). Times are Unix seconds.
//!
//! Every answer is one line of JSON: Zeus reads a body with a newline as JSON lines.

use crate::lightning::{default_fee_limit_msat, NodeInfo};
use crate::pairing::wallet::{SentPayment, Transaction, TransactionState};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use ldk_node::lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescriptionRef};
use serde_json::{json, Value};

/// How the reference marks a payment whose outcome is not known yet in `/gettxs`.
const IN_TRANSIT_MEMO: &str = "Payment on its way";

/// A JSON answer on one line.
pub fn ok(value: &Value) -> HttpResponse {
    json_text(StatusCode::OK, value.to_string())
}

pub fn json_text(status: StatusCode, body: String) -> HttpResponse {
    // serde_json's compact form escapes newlines inside strings: the body is one line.
    debug_assert!(!body.contains('\n'));
    HttpResponse::build(status)
        .content_type("application/json; charset=utf-8")
        .body(body)
}

/// `/auth`.
pub fn tokens(access: &str, refresh: &str) -> Value {
    json!({ "refresh_token": refresh, "access_token": access })
}

/// `/balance`: what the app may spend, in sat.
pub fn balance(spendable_msat: u64) -> Value {
    json!({ "BTC": { "AvailableBalance": spendable_msat / 1000 } })
}

/// `/getinfo`, in lnd's words.
pub fn info(node: &NodeInfo, block_hash: Option<String>, active_channels: usize) -> Value {
    let network = match node.network.as_str() {
        "main" => "mainnet",
        other => other,
    };
    json!({
        "identity_pubkey": node.node_id,
        "alias": node.alias.clone().unwrap_or_default(),
        "color": "",
        "num_active_channels": active_channels,
        "block_height": node.block_height,
        "block_hash": block_hash.unwrap_or_default(),
        "testnet": network != "mainnet" && network != "regtest" && network != "signet",
        "chains": [{ "chain": "bitcoin", "network": network }],
        "uris": [],
        "version": concat!("plugnode ", env!("CARGO_PKG_VERSION")),
    })
}

/// `/addinvoice`: lnd's AddInvoiceResponse plus the `pay_req` the reference adds.
pub fn added_invoice(invoice: &Transaction) -> Value {
    let bolt11 = invoice.bolt11.clone().unwrap_or_default();
    json!({
        "r_hash": invoice.payment_hash,
        "payment_hash": invoice.payment_hash,
        "payment_request": bolt11,
        "pay_req": bolt11,
    })
}

/// One entry of `/getuserinvoices`: an invoice the app made, paid or not.
pub fn user_invoice(invoice: &Transaction) -> Value {
    let bolt11 = invoice.bolt11.clone().unwrap_or_default();
    let paid = invoice.state == TransactionState::Settled;
    let mut value = json!({
        "r_hash": invoice.payment_hash,
        "payment_hash": invoice.payment_hash,
        "payment_request": bolt11,
        "pay_req": bolt11,
        "description": invoice.description.clone().unwrap_or_default(),
        "ispaid": paid,
        "amt": invoice.amount_msat / 1000,
        "expire_time": invoice
            .expires_at
            .map(|at| at.saturating_sub(invoice.created_at))
            .unwrap_or(3600),
        "timestamp": invoice.created_at,
        "type": "user_invoice",
    });
    if let Some(preimage) = invoice.preimage.as_ref().filter(|_| paid) {
        // Zeus reads it once the invoice is paid (its "paid" screen shows it).
        value["r_preimage"] = preimage.clone().into();
    }
    value
}

/// One entry of `/gettxs`: a payment the app sent (`None` for one that failed: the
/// reference lists only payments that went out or are still on their way). `value`
/// includes the fee, as BlueWallet expects; a payment in transit shows what is reserved
/// for it (amount and fee limit), as the reference does.
pub fn paid_invoice(payment: &Transaction) -> Option<Value> {
    let (fee_msat, memo) = match payment.state {
        TransactionState::Settled => (payment.fee_msat, payment.description.clone()),
        TransactionState::Pending => (
            default_fee_limit_msat(payment.amount_msat),
            Some(IN_TRANSIT_MEMO.to_string()),
        ),
        TransactionState::Failed | TransactionState::Expired => return None,
    };
    let mut value = json!({
        "type": "paid_invoice",
        "payment_hash": payment.payment_hash,
        "fee": fee_msat.div_ceil(1000),
        "value": (payment.amount_msat + fee_msat).div_ceil(1000),
        "timestamp": payment.created_at,
        "memo": memo.unwrap_or_default(),
    });
    if let Some(preimage) = &payment.preimage {
        value["payment_preimage"] = preimage.clone().into();
    }
    Some(value)
}

/// `/decodeinvoice`: lnd's PayReq.
pub fn decoded(invoice: &Bolt11Invoice) -> Value {
    let (description, description_hash) = match invoice.description() {
        Bolt11InvoiceDescriptionRef::Direct(text) => (text.to_string(), String::new()),
        Bolt11InvoiceDescriptionRef::Hash(hash) => (String::new(), hash.0.to_string()),
    };
    let msat = invoice.amount_milli_satoshis().unwrap_or(0);
    json!({
        "destination": invoice.get_payee_pub_key().to_string(),
        "payment_hash": invoice.payment_hash().to_string(),
        "num_satoshis": (msat / 1000).to_string(),
        "num_msat": msat.to_string(),
        "timestamp": invoice.duration_since_epoch().as_secs().to_string(),
        "expiry": invoice.expiry_time().as_secs().to_string(),
        "description": description,
        "description_hash": description_hash,
        "fallback_addr": invoice
            .fallback_addresses()
            .first()
            .map(ToString::to_string)
            .unwrap_or_default(),
        "cltv_expiry": invoice.min_final_cltv_expiry_delta().to_string(),
        "route_hints": [],
        "payment_addr": hex::encode(invoice.payment_secret().0),
        "features": {},
    })
}

/// `/payinvoice` once the payment succeeded: lnd's SendResponse with the `pay_req` and
/// `decoded` the reference adds. Zeus takes an answer without `status` as complete.
pub fn payment(sent: &SentPayment, invoice: &Bolt11Invoice) -> Value {
    let mut decoded = decoded(invoice);
    // An invoice without an amount was paid with the app's: say what was sent.
    decoded["num_satoshis"] = (sent.amount_msat / 1000).to_string().into();
    decoded["num_msat"] = sent.amount_msat.to_string().into();
    let total_msat = sent.amount_msat + sent.fee_msat;
    json!({
        "payment_error": "",
        "payment_preimage": sent.preimage.clone().unwrap_or_default(),
        "payment_hash": sent.payment_hash,
        "payment_route": {
            "total_amt": total_msat.div_ceil(1000),
            "total_amt_msat": total_msat,
            "total_fees": sent.fee_msat.div_ceil(1000),
            "total_fees_msat": sent.fee_msat,
        },
        "pay_req": invoice.to_string(),
        "decoded": decoded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::wallet::TransactionState::*;

    fn transaction(outgoing: bool, state: TransactionState) -> Transaction {
        Transaction {
            outgoing,
            state,
            bolt11: Some("lnbcrt10u1example".into()),
            description: Some("coffee".into()),
            description_hash: None,
            preimage: (state == Settled).then(|| "22".repeat(32)),
            payment_hash: "11".repeat(32),
            amount_msat: 1_000_500,
            fee_msat: if outgoing && state == Settled {
                1_200
            } else {
                0
            },
            created_at: 1_700_000_000,
            expires_at: Some(1_700_086_400),
            settled_at: None,
        }
    }

    #[test]
    fn a_user_invoice_has_what_bluewallet_and_zeus_read() {
        let open = user_invoice(&transaction(false, Pending));
        assert_eq!(open["type"], "user_invoice");
        assert_eq!(open["payment_hash"], "11".repeat(32), "a hex string");
        assert_eq!(open["r_hash"], open["payment_hash"]);
        assert_eq!(open["payment_request"], "lnbcrt10u1example");
        assert_eq!(open["pay_req"], open["payment_request"]);
        assert_eq!(open["ispaid"], false);
        assert_eq!(open["amt"], 1000, "whole sat");
        assert_eq!(open["timestamp"], 1_700_000_000, "seconds");
        assert_eq!(open["expire_time"], 86_400);
        assert_eq!(open["description"], "coffee");
        assert!(open.get("r_preimage").is_none());
        // BlueWallet shows anything with an `amount` as an on-chain transaction.
        assert!(open.get("amount").is_none());
        let paid = user_invoice(&transaction(false, Settled));
        assert_eq!(paid["ispaid"], true);
        assert_eq!(paid["r_preimage"], "22".repeat(32));
    }

    #[test]
    fn a_sent_payment_counts_its_fee_in_value() {
        let sent = paid_invoice(&transaction(true, Settled)).unwrap();
        assert_eq!(sent["type"], "paid_invoice");
        assert_eq!(sent["fee"], 2);
        assert_eq!(sent["value"], 1002, "1 000 500 + 1 200 msat, rounded up");
        assert_eq!(sent["payment_preimage"], "22".repeat(32));
        assert_eq!(sent["memo"], "coffee");
        assert!(sent.get("amount").is_none() && sent.get("amt").is_none());

        let on_its_way = paid_invoice(&transaction(true, Pending)).unwrap();
        assert_eq!(on_its_way["memo"], IN_TRANSIT_MEMO);
        // Amount plus the fee limit (1 % + 50 sat), as reserved.
        assert_eq!(on_its_way["value"], 1061);
        assert!(on_its_way.get("payment_preimage").is_none());

        assert!(paid_invoice(&transaction(true, Failed)).is_none());
    }

    #[test]
    fn balance_and_tokens_have_the_reference_shape() {
        assert_eq!(
            balance(12_345_999),
            json!({"BTC": {"AvailableBalance": 12_345}})
        );
        let tokens = tokens("aa", "bb");
        assert_eq!(tokens["access_token"], "aa");
        assert_eq!(tokens["refresh_token"], "bb");
    }

    #[test]
    fn a_decoded_invoice_and_a_payment_have_lnds_fields() {
        let text = super::super::tests::invoice(Some(1_000_500));
        let invoice: Bolt11Invoice = text.parse().unwrap();
        let value = decoded(&invoice);
        assert_eq!(value["payment_hash"], "01".repeat(32));
        assert_eq!(value["num_satoshis"], "1000");
        assert_eq!(value["num_msat"], "1000500");
        assert_eq!(value["description"], "coffee");
        assert_eq!(value["description_hash"], "");
        assert_eq!(value["cltv_expiry"], "144");
        assert_eq!(value["expiry"], "3600");
        assert_eq!(value["destination"].as_str().unwrap().len(), 66);
        assert_eq!(value["payment_addr"], "02".repeat(32));

        let sent = SentPayment {
            payment_hash: "01".repeat(32),
            preimage: Some("03".repeat(32)),
            amount_msat: 1_000_500,
            fee_msat: 1_000,
            pending: false,
        };
        let paid = payment(&sent, &invoice);
        assert_eq!(paid["payment_error"], "");
        assert_eq!(paid["payment_preimage"], "03".repeat(32));
        assert_eq!(paid["payment_hash"], "01".repeat(32));
        assert_eq!(paid["payment_route"]["total_fees"], 1);
        assert_eq!(paid["payment_route"]["total_amt"], 1002);
        assert_eq!(paid["pay_req"], text);
        assert_eq!(paid["decoded"]["payment_hash"], "01".repeat(32));
        assert!(
            paid.get("status").is_none(),
            "Zeus reads no status as complete"
        );
    }

    #[test]
    fn answers_are_one_line() {
        let mut invoice = transaction(false, Pending);
        invoice.description = Some("two\nlines".into());
        let response = ok(&user_invoice(&invoice));
        use actix_web::body::MessageBody;
        let body = match response.into_body().try_into_bytes() {
            Ok(bytes) => bytes,
            Err(_) => panic!("a plain body"),
        };
        assert!(!body.contains(&b'\n'));
    }
}
