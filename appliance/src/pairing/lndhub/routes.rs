//! The LNDHub calls, each one authenticated by its token and checked against the
//! connection (revoked, expired and receive-only connections are refused on every call,
//! not only at login), and carried out by the [`Wallet`].

use super::error::{
    LndhubError, BAD_ARGUMENTS, IN_TRANSIT, NOT_ENOUGH_BALANCE, NO_NEW_ACCOUNTS, SERVER_ERROR,
};
use super::reply;
use super::request::{self, MAX_LOGIN_CHARS, MAX_PASSWORD_CHARS};
use super::throttle::Throttle;
use super::tokens::Tokens;
use crate::lightning::InvoiceDescription;
use crate::pairing::connection::Connection;
use crate::pairing::error::ErrorKind;
use crate::pairing::password_sha256;
use crate::pairing::wallet::{parse_payment_hash, TransactionFilter, TransactionState, Wallet};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How long an app's invoice may be paid: a day, as the reference makes them.
const INVOICE_EXPIRY_SECS: u32 = 24 * 3600;
/// `/payinvoice` waits for the payment's outcome until this long after the request came in.
/// BlueWallet gives up on every request after 20 s; the node's checks before sending take
/// up to 3 s more, so the answer leaves well within that.
const PAYMENT_DEADLINE: Duration = Duration::from_secs(12);

/// What the calls share.
pub struct Hub {
    pub wallet: Wallet,
    pub tokens: Tokens,
    pub throttle: Throttle,
}

type Answer = Result<HttpResponse, LndhubError>;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(resource("/auth", Method::POST, auth))
        .service(resource("/create", Method::POST, create))
        .service(resource("/getinfo", Method::GET, getinfo))
        .service(resource("/balance", Method::GET, balance))
        .service(resource("/gettxs", Method::GET, gettxs))
        .service(resource("/getuserinvoices", Method::GET, getuserinvoices))
        .service(resource("/getpending", Method::GET, getpending))
        .service(resource("/getbtc", Method::GET, getbtc))
        .service(resource("/decodeinvoice", Method::GET, decodeinvoice))
        .service(resource(
            "/checkpayment/{payment_hash}",
            Method::GET,
            checkpayment,
        ))
        .service(resource("/addinvoice", Method::POST, addinvoice))
        .service(resource("/payinvoice", Method::POST, payinvoice))
        .default_service(web::to(unknown_route));
}

/// `path` answered by `handler` for `method`, and by an LNDHub-shaped refusal otherwise.
fn resource<F, Args>(path: &str, method: Method, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::method(method.clone()).to(handler))
        .default_service(web::to(move |request: HttpRequest| {
            let allowed = method.clone();
            async move { wrong_method(&request, &allowed) }
        }))
}

impl Hub {
    /// The connection behind the request's access token, if it may be used now.
    async fn connection(&self, request: &HttpRequest) -> Result<Connection, LndhubError> {
        let token = request::bearer(request).ok_or_else(LndhubError::bad_auth)?;
        let id = self
            .tokens
            .access(token, Instant::now())
            .ok_or_else(LndhubError::bad_auth)?;
        self.usable(&id).await
    }

    /// The connection `id` if it may be used now; its tokens end the moment it may not.
    async fn usable(&self, id: &str) -> Result<Connection, LndhubError> {
        match self.wallet.usable(id).await {
            Ok(connection) => Ok(connection),
            Err(err) if matches!(err.kind, ErrorKind::Unauthorized) => {
                self.tokens.forget(id);
                debug!("LNDHub: connection {id} refused: {err}");
                Err(LndhubError::bad_auth())
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// `POST /auth`: `{"login", "password"}` or `{"refresh_token"}` (the reference looks at
/// the body, not at `?type=`, and so do we).
async fn auth(hub: web::Data<Hub>, request: HttpRequest, payload: web::Payload) -> Answer {
    let fields = request::fields(&request, payload).await?;
    let now = Instant::now();
    if let Some(refresh_token) = request::text(&fields, "refresh_token")? {
        let (id, pair) = hub
            .tokens
            .refresh(refresh_token, now)
            .ok_or_else(LndhubError::bad_auth)?;
        hub.usable(&id).await?;
        return Ok(reply::ok(&reply::tokens(
            pair.access.expose(),
            pair.refresh.expose(),
        )));
    }
    let (Some(login), Some(password)) = (
        request::text(&fields, "login")?,
        request::text(&fields, "password")?,
    ) else {
        return Err(LndhubError::bad_arguments(
            "Bad arguments: send {\"login\": \"…\", \"password\": \"…\"} or {\"refresh_token\": \"…\"}.",
        ));
    };
    let address = request.peer_addr().map(|a| a.ip());
    if let Err(wait) = hub.throttle.check(address, login, now) {
        debug!(
            "LNDHub: login refused without a look for {} s: too many wrong passwords",
            wait.as_secs()
        );
        return Err(LndhubError::throttled());
    }
    let found = if login.len() <= MAX_LOGIN_CHARS && password.len() <= MAX_PASSWORD_CHARS {
        hub.wallet.store().by_lndhub_login(login).await?
    } else {
        None
    };
    let given = password_sha256(password);
    let Some((connection, _)) = found.filter(|(_, kept)| same_bytes(kept, &given)) else {
        hub.throttle.failed(address, login, now);
        if hub.throttle.check(address, login, now).is_err() {
            warn!(
                "LNDHub: too many wrong passwords (from {}, or for one login); those logins \
                 wait {} minutes",
                address.map_or("an unknown address".into(), |a| a.to_string()),
                super::throttle::WINDOW.as_secs() / 60
            );
        }
        return Err(LndhubError::bad_auth());
    };
    hub.throttle.succeeded(login);
    let connection = hub.usable(&connection.id).await?;
    let pair = hub.tokens.issue(&connection.id, now);
    info!("LNDHub: {} logged in", connection.label());
    Ok(reply::ok(&reply::tokens(
        pair.access.expose(),
        pair.refresh.expose(),
    )))
}

/// `POST /create`: the reference makes accounts for anyone; this box makes logins on its
/// web page only, with the reference's answer for a hub that takes no new users.
async fn create() -> Answer {
    Err(LndhubError::new(
        NO_NEW_ACCOUNTS,
        "This box makes no accounts here: pair the app on the box's web page and scan the \
         LNDHub code it shows.",
    ))
}

/// `GET /getinfo`: the node, in lnd's words. BlueWallet probes it (without a token) to
/// check a hub address: "bad auth" tells it an LNDHub answers here.
async fn getinfo(hub: web::Data<Hub>, request: HttpRequest) -> Answer {
    hub.connection(&request).await?;
    let info = hub.wallet.info()?;
    let active = hub
        .wallet
        .lightning()
        .list_channels()
        .map(|channels| channels.iter().filter(|c| c.usable).count())
        .unwrap_or(0);
    Ok(reply::ok(&reply::info(
        &info,
        hub.wallet.best_block_hash(),
        active,
    )))
}

/// `GET /balance`: what this app may spend now (channels, capped by what is left of its
/// budget); 0 for an app that may only receive.
async fn balance(hub: web::Data<Hub>, request: HttpRequest) -> Answer {
    let connection = hub.connection(&request).await?;
    let spendable = if connection.spend {
        hub.wallet.balance_msat(&connection).await?
    } else {
        0
    };
    Ok(reply::ok(&reply::balance(spendable)))
}

/// `GET /gettxs`: the payments this app sent, oldest first as the reference lists them.
/// `limit` and `offset` are ignored as the reference ignores them (BlueWallet asks for 10
/// but shows them next to every invoice).
async fn gettxs(hub: web::Data<Hub>, request: HttpRequest) -> Answer {
    let connection = hub.connection(&request).await?;
    let payments = hub
        .wallet
        .transactions(
            &connection,
            TransactionFilter {
                outgoing: Some(true),
                unpaid: true,
                ..TransactionFilter::default()
            },
        )
        .await?;
    let list: Vec<Value> = payments
        .iter()
        .rev()
        .filter_map(reply::paid_invoice)
        .collect();
    Ok(reply::ok(&Value::Array(list)))
}

/// `GET /getuserinvoices[?limit=N]`: the invoices this app made (the newest N), oldest
/// first.
async fn getuserinvoices(hub: web::Data<Hub>, request: HttpRequest) -> Answer {
    let connection = hub.connection(&request).await?;
    let limit = request::query(&request)
        .get("limit")
        .and_then(|l| l.trim().parse::<u32>().ok())
        .filter(|l| *l > 0);
    let invoices = hub
        .wallet
        .transactions(
            &connection,
            TransactionFilter {
                outgoing: Some(false),
                unpaid: true,
                limit,
                ..TransactionFilter::default()
            },
        )
        .await?;
    let list: Vec<Value> = invoices.iter().rev().map(reply::user_invoice).collect();
    Ok(reply::ok(&Value::Array(list)))
}

/// `GET /getpending`: the reference lists on-chain deposits still confirming; apps have no
/// on-chain deposits on this box.
async fn getpending(hub: web::Data<Hub>, request: HttpRequest) -> Answer {
    hub.connection(&request).await?;
    Ok(reply::ok(&json!([])))
}

/// `GET /getbtc`: the reference hands out an on-chain deposit address. This box keeps no
/// on-chain funds for apps, so the list is empty: BlueWallet then has no refill address
/// and shows none (no error), Zeus gets no address either.
async fn getbtc(hub: web::Data<Hub>, request: HttpRequest) -> Answer {
    hub.connection(&request).await?;
    Ok(reply::ok(&json!([])))
}

/// `GET /decodeinvoice?invoice=…`.
async fn decodeinvoice(hub: web::Data<Hub>, request: HttpRequest) -> Answer {
    hub.connection(&request).await?;
    let query = request::query(&request);
    let Some(text) = query
        .get("invoice")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    else {
        // The reference's code for a missing invoice here.
        return Err(LndhubError::new(
            SERVER_ERROR,
            "Give the invoice to decode: /decodeinvoice?invoice=lnbc…",
        ));
    };
    let invoice = hub.wallet.read_invoice(text)?;
    Ok(reply::ok(&reply::decoded(&invoice)))
}

/// `GET /checkpayment/{payment_hash}`: `{"paid": …}` for one of this app's invoices (or
/// payments). Another app's hash is not this app's business: not paid, as far as it knows.
async fn checkpayment(hub: web::Data<Hub>, request: HttpRequest) -> Answer {
    let connection = hub.connection(&request).await?;
    let text = request.match_info().get("payment_hash").unwrap_or("");
    let hash = parse_payment_hash(text).map_err(|_| {
        LndhubError::bad_arguments(
            "Bad arguments: a payment hash is 64 hex characters: /checkpayment/<payment_hash>.",
        )
    })?;
    let paid = match hub.wallet.lookup(&connection, &hash).await {
        Ok(transaction) => transaction.state == TransactionState::Settled,
        Err(err) if err.kind == ErrorKind::NotFound => false,
        Err(err) => return Err(err.into()),
    };
    Ok(reply::ok(&json!({ "paid": paid })))
}

/// `POST /addinvoice` `{"amt": "1000", "memo": "…"}` (also `description_hash`, as other
/// hubs take it for LNURL).
async fn addinvoice(hub: web::Data<Hub>, request: HttpRequest, payload: web::Payload) -> Answer {
    let connection = hub.connection(&request).await?;
    let fields = request::fields(&request, payload).await?;
    let amount_sat = request::sat(&fields, "amt")?;
    let description = match request::text(&fields, "description_hash")? {
        Some(hash) => InvoiceDescription::Hash(hash.to_string()),
        None => InvoiceDescription::Text(request::text(&fields, "memo")?.unwrap_or("").into()),
    };
    let invoice = hub
        .wallet
        .make_invoice(
            &connection,
            Some(amount_sat * 1000),
            description,
            INVOICE_EXPIRY_SECS,
        )
        .await?;
    Ok(reply::ok(&reply::added_invoice(&invoice)))
}

/// `POST /payinvoice` `{"invoice": "lnbc…", "amount": N}` (`amount` in sat only counts for
/// an invoice without one, as in the reference).
///
/// Waits for the outcome until [`PAYMENT_DEADLINE`]. A payment still on its way then gets
/// code 9, the reference's "payment in transit": its budget stays reserved, the settler
/// settles it when the node knows the outcome, and it shows in `/gettxs` meanwhile. An
/// error rather than a success, so the app neither claims it paid nor forgets it tried;
/// paying the same invoice again is refused while it is on its way.
async fn payinvoice(hub: web::Data<Hub>, request: HttpRequest, payload: web::Payload) -> Answer {
    let started = Instant::now();
    let connection = hub.connection(&request).await?;
    let fields = request::fields(&request, payload).await?;
    if !connection.spend {
        return Err(LndhubError::new(
            NOT_ENOUGH_BALANCE,
            "This login may only receive, so it cannot pay. To pay from this app, pair it \
             again on the box's web page with spending allowed.",
        ));
    }
    let text = request::text(&fields, "invoice")?.ok_or_else(|| {
        LndhubError::bad_arguments("Bad arguments: give \"invoice\": the invoice to pay (lnbc…).")
    })?;
    let invoice = hub.wallet.read_invoice(text)?;
    let amount_msat = match invoice.amount_milli_satoshis() {
        Some(_) => None,
        None => Some(
            request::optional_sat(&fields, "amount")?.ok_or_else(|| {
                LndhubError::bad_arguments(
                    "Bad arguments: this invoice has no amount: give \"amount\" in sat.",
                )
            })? * 1000,
        ),
    };
    let wait = PAYMENT_DEADLINE
        .saturating_sub(started.elapsed())
        .max(Duration::from_secs(1));
    let sent = hub
        .wallet
        .pay_invoice(&connection, text, amount_msat, wait)
        .await?;
    if sent.pending {
        info!(
            "LNDHub: a payment of {} sat by {} is still on its way",
            sent.amount_msat / 1000,
            connection.label()
        );
        return Err(LndhubError::new(
            IN_TRANSIT,
            "The payment is still in transit. Do not pay again: it shows in your transactions \
             and settles on its own; if it fails, its amount comes back to your budget.",
        ));
    }
    info!(
        "LNDHub: {} paid {} sat",
        connection.label(),
        sent.amount_msat / 1000
    );
    Ok(reply::ok(&reply::payment(&sent, &invoice)))
}

async fn unknown_route(request: HttpRequest) -> Answer {
    Err(LndhubError::new(
        BAD_ARGUMENTS,
        format!(
            "There is no {} {} on this LNDHub: it answers /auth, /getinfo, /balance, /gettxs, \
             /getuserinvoices, /getpending, /getbtc, /decodeinvoice, /checkpayment, \
             /addinvoice and /payinvoice.",
            request.method(),
            printable(request.path())
        ),
    )
    .with_status(StatusCode::NOT_FOUND))
}

fn wrong_method(request: &HttpRequest, allowed: &Method) -> Answer {
    Err(LndhubError::new(
        BAD_ARGUMENTS,
        format!(
            "{} takes {allowed}, not {}.",
            printable(request.path()),
            request.method()
        ),
    )
    .with_status(StatusCode::METHOD_NOT_ALLOWED))
}

/// A path as the client sent it, cut short and without control characters, for a message.
fn printable(path: &str) -> String {
    path.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// Compares two hashes without stopping at the first difference.
fn same_bytes(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_compare_whole() {
        assert!(same_bytes("abcd", "abcd"));
        assert!(!same_bytes("abcd", "abce"));
        assert!(!same_bytes("abcd", "abc"));
    }
}
