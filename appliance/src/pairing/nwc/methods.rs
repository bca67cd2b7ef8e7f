//! The NIP-47 methods: each one checked against the connection's permissions, carried out
//! by the [`Wallet`], and answered in NIP-47's words.

use super::protocol::NwcError;
use crate::lightning::{ErrorKind as LightningKind, InvoiceDescription, PAYMENT_WAIT};
use crate::pairing::connection::Connection;
use crate::pairing::error::{ErrorKind, PairingError};
use crate::pairing::wallet::{
    parse_payment_hash, Transaction, TransactionFilter, TransactionState, Wallet,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// What an app that may only receive can call.
const RECEIVE_METHODS: [&str; 4] = [
    "get_info",
    "make_invoice",
    "lookup_invoice",
    "list_transactions",
];
/// What an app that may spend can call besides.
const SPEND_METHODS: [&str; 4] = ["pay_invoice", "pay_keysend", "get_balance", "get_budget"];

/// Every method the service knows (the info event lists them all).
pub fn all_methods() -> Vec<&'static str> {
    RECEIVE_METHODS
        .iter()
        .chain(&SPEND_METHODS)
        .copied()
        .collect()
}

pub const ALL_NOTIFICATIONS: [&str; 2] = ["payment_received", "payment_sent"];

/// The methods `connection` may call.
pub fn methods_for(connection: &Connection) -> Vec<&'static str> {
    if connection.spend {
        all_methods()
    } else {
        RECEIVE_METHODS.to_vec()
    }
}

/// The notifications `connection` gets.
pub fn notifications_for(connection: &Connection) -> Vec<&'static str> {
    if connection.spend {
        ALL_NOTIFICATIONS.to_vec()
    } else {
        vec!["payment_received"]
    }
}

/// Carries out `method` for `connection`.
pub async fn execute(
    wallet: &Wallet,
    connection: &Connection,
    method: &str,
    params: &Value,
) -> Result<Value, NwcError> {
    if !all_methods().contains(&method) {
        return Err(NwcError::new(
            "NOT_IMPLEMENTED",
            format!("This wallet does not support {method:?}."),
        ));
    }
    if !methods_for(connection).contains(&method) {
        return Err(NwcError::new(
            "RESTRICTED",
            format!(
                "This connection may only receive, so it may not call {method}. Allow spending \
                 for a new connection on the box's web page."
            ),
        ));
    }
    match method {
        "get_info" => get_info(wallet, connection),
        "get_balance" => {
            let balance = wallet.balance_msat(connection).await.map_err(error_of)?;
            Ok(json!({ "balance": balance }))
        }
        "get_budget" => {
            let budget = wallet.budget(connection).await.map_err(error_of)?;
            let mut result = json!({
                "used_budget": budget.used_msat,
                "total_budget": budget.total_msat,
                "renewal_period": budget.renewal.as_str(),
            });
            if let Some(at) = budget.renews_at {
                result["renews_at"] = at.into();
            }
            Ok(result)
        }
        "make_invoice" => make_invoice(wallet, connection, params).await,
        "pay_invoice" => {
            let params: PayInvoice = parse(params, "{\"invoice\": \"lnbc…\"}")?;
            let sent = wallet
                .pay_invoice(connection, &params.invoice, params.amount, PAYMENT_WAIT)
                .await
                .map_err(error_of)?;
            paid(sent)
        }
        "pay_keysend" => {
            let params: PayKeysend = parse(params, "{\"amount\": 1000, \"pubkey\": \"02…\"}")?;
            if !params.tlv_records.is_empty() || params.preimage.is_some() {
                return Err(NwcError::new(
                    "NOT_IMPLEMENTED",
                    "This wallet sends keysend payments without custom records or a preimage \
                     of the app's choosing.",
                ));
            }
            let sent = wallet
                .pay_keysend(connection, &params.pubkey, params.amount, PAYMENT_WAIT)
                .await
                .map_err(error_of)?;
            paid(sent)
        }
        "lookup_invoice" => {
            let params: Lookup = parse(params, "{\"payment_hash\": \"…\"}")?;
            let hash = match (&params.payment_hash, &params.invoice) {
                (Some(hash), _) if !hash.trim().is_empty() => {
                    parse_payment_hash(hash).map_err(error_of)?
                }
                (_, Some(invoice)) if !invoice.trim().is_empty() => payment_hash_of(invoice)?,
                // Zeus sends empty params (a field-name slip on its side): say what is missing.
                _ => {
                    return Err(NwcError::new(
                        "OTHER",
                        "Give \"payment_hash\" or \"invoice\" to look up.",
                    ))
                }
            };
            let transaction = wallet.lookup(connection, &hash).await.map_err(error_of)?;
            Ok(transaction_json(&transaction))
        }
        "list_transactions" => {
            let params: List = parse(params, "{\"limit\": 10}")?;
            let outgoing = match params.kind.as_deref() {
                None => None,
                Some("incoming") => Some(false),
                Some("outgoing") => Some(true),
                Some(other) => {
                    return Err(NwcError::new(
                        "OTHER",
                        format!("\"type\" is \"incoming\" or \"outgoing\", not {other:?}."),
                    ))
                }
            };
            let transactions = wallet
                .transactions(
                    connection,
                    TransactionFilter {
                        from: params.from,
                        until: params.until,
                        limit: params.limit,
                        offset: params.offset,
                        unpaid: params.unpaid.unwrap_or(false),
                        outgoing,
                    },
                )
                .await
                .map_err(error_of)?;
            Ok(json!({
                "transactions": transactions.iter().map(transaction_json).collect::<Vec<_>>()
            }))
        }
        _ => unreachable!("checked against all_methods above"),
    }
}

fn get_info(wallet: &Wallet, connection: &Connection) -> Result<Value, NwcError> {
    let info = wallet.info().map_err(error_of)?;
    let network = match info.network.as_str() {
        "main" => "mainnet",
        "testnet4" => "testnet",
        other => other,
    };
    let mut result = json!({
        "alias": info.alias.unwrap_or_default(),
        "color": "",
        "pubkey": info.node_id,
        "network": network,
        "block_height": info.block_height,
        "methods": methods_for(connection),
        "notifications": notifications_for(connection),
    });
    if let Some(hash) = wallet.best_block_hash() {
        result["block_hash"] = hash.into();
    }
    Ok(result)
}

async fn make_invoice(
    wallet: &Wallet,
    connection: &Connection,
    params: &Value,
) -> Result<Value, NwcError> {
    let params: MakeInvoice = parse(params, "{\"amount\": 21000, \"description\": \"…\"}")?;
    if params.amount == 0 {
        return Err(NwcError::new(
            "OTHER",
            "\"amount\" (in msat) must be more than 0.",
        ));
    }
    let description = match (params.description_hash, params.description) {
        (Some(hash), _) if !hash.is_empty() => InvoiceDescription::Hash(hash),
        (_, text) => InvoiceDescription::Text(text.unwrap_or_default()),
    };
    let expiry = params.expiry.unwrap_or(3600).clamp(60, 31 * 24 * 3600) as u32;
    let transaction = wallet
        .make_invoice(connection, Some(params.amount), description, expiry)
        .await
        .map_err(error_of)?;
    Ok(transaction_json(&transaction))
}

fn paid(sent: crate::pairing::wallet::SentPayment) -> Result<Value, NwcError> {
    match sent.preimage {
        Some(preimage) if !sent.pending => Ok(json!({
            "preimage": preimage,
            "fees_paid": sent.fee_msat,
        })),
        _ => Err(NwcError::new(
            "OTHER",
            "The payment is still on its way; its budget stays reserved until it settles. \
             Look it up later with lookup_invoice.",
        )),
    }
}

/// The payment hash of an invoice an app looks up, read as the box reads any invoice.
fn payment_hash_of(invoice: &str) -> Result<String, NwcError> {
    use crate::lightning::PaymentRequest;
    match PaymentRequest::parse(invoice) {
        Ok(PaymentRequest::Bolt11(invoice)) => Ok(invoice.payment_hash().to_string()),
        Ok(PaymentRequest::Bolt12(_)) => Err(NwcError::new(
            "OTHER",
            "\"invoice\" is an offer (lno…), which has no payment hash: look up the invoice \
             (lnbc…) or its \"payment_hash\".",
        )),
        Err(err) => Err(NwcError::new("OTHER", format!("\"invoice\": {err}"))),
    }
}

/// A transaction in NIP-47's words (amounts in msat, times in Unix seconds).
pub fn transaction_json(t: &Transaction) -> Value {
    let mut value = json!({
        "type": if t.outgoing { "outgoing" } else { "incoming" },
        "state": match t.state {
            TransactionState::Pending => "pending",
            TransactionState::Settled => "settled",
            TransactionState::Expired => "expired",
            TransactionState::Failed => "failed",
        },
        "payment_hash": t.payment_hash,
        "amount": t.amount_msat,
        "fees_paid": t.fee_msat,
        "created_at": t.created_at,
    });
    let optional = [
        ("invoice", t.bolt11.clone().map(Value::from)),
        ("description", t.description.clone().map(Value::from)),
        (
            "description_hash",
            t.description_hash.clone().map(Value::from),
        ),
        ("preimage", t.preimage.clone().map(Value::from)),
        ("expires_at", t.expires_at.map(Value::from)),
        ("settled_at", t.settled_at.map(Value::from)),
    ];
    for (key, field) in optional {
        if let Some(field) = field {
            value[key] = field;
        }
    }
    value
}

/// A pairing error in NIP-47's codes.
pub fn error_of(error: PairingError) -> NwcError {
    let code = match error.kind {
        ErrorKind::InvalidInput => "OTHER",
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::QuotaExceeded => "QUOTA_EXCEEDED",
        ErrorKind::Restricted => "RESTRICTED",
        ErrorKind::Unauthorized | ErrorKind::NeedsConfirmation => "UNAUTHORIZED",
        ErrorKind::Lightning(LightningKind::InsufficientFunds) => "INSUFFICIENT_BALANCE",
        ErrorKind::Lightning(LightningKind::PaymentFailed | LightningKind::PeerUnreachable) => {
            "PAYMENT_FAILED"
        }
        ErrorKind::Lightning(LightningKind::NotRunning | LightningKind::Internal)
        | ErrorKind::Internal => "INTERNAL",
        ErrorKind::Lightning(_) => "OTHER",
    };
    NwcError::new(code, error.message)
}

fn parse<T: serde::de::DeserializeOwned>(params: &Value, shape: &str) -> Result<T, NwcError> {
    let params = if params.is_null() {
        Value::Object(Default::default())
    } else {
        params.clone()
    };
    serde_json::from_value(params)
        .map_err(|err| NwcError::new("OTHER", format!("Bad params ({err}); send {shape}.")))
}

#[derive(Deserialize)]
struct PayInvoice {
    invoice: String,
    #[serde(default)]
    amount: Option<u64>,
}

#[derive(Deserialize)]
struct PayKeysend {
    amount: u64,
    pubkey: String,
    #[serde(default)]
    preimage: Option<String>,
    #[serde(default)]
    tlv_records: Vec<Value>,
}

#[derive(Deserialize)]
struct MakeInvoice {
    amount: u64,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    description_hash: Option<String>,
    #[serde(default)]
    expiry: Option<u64>,
}

#[derive(Deserialize)]
struct Lookup {
    #[serde(default)]
    payment_hash: Option<String>,
    #[serde(default)]
    invoice: Option<String>,
}

#[derive(Deserialize)]
struct List {
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    until: Option<u64>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    offset: Option<u32>,
    #[serde(default)]
    unpaid: Option<bool>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lightning::ErrorKind as L;

    #[test]
    fn pairing_errors_become_nip47_codes() {
        let code = |kind| error_of(PairingError::new(kind, "x")).code;
        assert_eq!(code(ErrorKind::QuotaExceeded), "QUOTA_EXCEEDED");
        assert_eq!(code(ErrorKind::Restricted), "RESTRICTED");
        assert_eq!(code(ErrorKind::Unauthorized), "UNAUTHORIZED");
        assert_eq!(code(ErrorKind::NotFound), "NOT_FOUND");
        assert_eq!(
            code(ErrorKind::Lightning(L::InsufficientFunds)),
            "INSUFFICIENT_BALANCE"
        );
        assert_eq!(
            code(ErrorKind::Lightning(L::PaymentFailed)),
            "PAYMENT_FAILED"
        );
        assert_eq!(code(ErrorKind::Lightning(L::InvoiceExpired)), "OTHER");
        assert_eq!(code(ErrorKind::Internal), "INTERNAL");
    }

    #[test]
    fn a_transaction_has_the_fields_nwc_clients_read() {
        let transaction = Transaction {
            outgoing: false,
            state: TransactionState::Settled,
            bolt11: Some("lnbcrt1…".into()),
            description: Some("coffee".into()),
            description_hash: None,
            preimage: Some("00".repeat(32)),
            payment_hash: "11".repeat(32),
            amount_msat: 21_000,
            fee_msat: 0,
            created_at: 1_700_000_000,
            expires_at: Some(1_700_003_600),
            settled_at: Some(1_700_000_100),
        };
        let value = transaction_json(&transaction);
        let parsed: nostr_sdk::nips::nip47::LookupInvoiceResponse =
            serde_json::from_value(value.clone()).unwrap();
        assert_eq!(parsed.amount, 21_000);
        assert_eq!(value["type"], "incoming");
        assert_eq!(value["state"], "settled");
        assert!(value.get("description_hash").is_none());
    }
}
