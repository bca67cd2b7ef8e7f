//! The wallet and Lightning part of the JSON API: a thin layer over [`LightningHandle`]
//! that turns its errors into HTTP answers with the same words.

use super::auth::{self, Auth, Authenticated};
use super::error::ApiError;
use super::key_press::{self, Asked};
use super::routes::{api_routes, json_body as body};
use super::WebContext;
use crate::display::WithdrawalQuestion;
use crate::lightning::liquidity::FeeApproval;
use crate::lightning::{ErrorKind, InvoiceDescription, LightningError, OpenChannel, RestoreError};
use crate::qr;
use crate::secret::Secret;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::fmt::Write as _;

api_routes! { pub fn routes, const ROUTES;
    GET "/api/wallet" => wallet_state;
    POST "/api/wallet/create" => create_wallet;
    POST "/api/wallet/restore" => restore_wallet;
    POST "/api/wallet/show-words" => show_words_again;
    GET "/api/lightning/info" => info;
    GET "/api/lightning/balances" => balances;
    POST "/api/lightning/address" => new_address;
    POST "/api/lightning/sync" => sync_wallets;
    POST "/api/lightning/withdraw" => withdraw;
    POST "/api/lightning/peers" => connect_peer;
    GET "/api/lightning/channels" => list_channels;
    POST "/api/lightning/channels" => open_channel;
    POST "/api/lightning/channels/{id}/close" => close_channel;
    POST "/api/lightning/invoices" => create_invoice;
    GET "/api/lightning/lsp" => lsp_state;
    POST "/api/lightning/lsp" => lsp_answer;
    POST "/api/lightning/offers" => create_offer;
    POST "/api/lightning/decode" => decode;
    POST "/api/lightning/pay" => pay;
    POST "/api/lightning/keysend" => keysend;
    GET "/api/lightning/payments" => list_payments;
    GET "/api/qr" => qr_svg;
}

impl From<LightningError> for ApiError {
    fn from(err: LightningError) -> Self {
        let status = match err.kind {
            ErrorKind::NotRunning | ErrorKind::NoSeed => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::InvalidInput | ErrorKind::InvalidInvoice | ErrorKind::InvoiceExpired => {
                StatusCode::BAD_REQUEST
            }
            ErrorKind::AlreadyPaid => StatusCode::CONFLICT,
            ErrorKind::InsufficientFunds => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::PaymentFailed | ErrorKind::PeerUnreachable => StatusCode::BAD_GATEWAY,
            ErrorKind::ChannelNotFound => StatusCode::NOT_FOUND,
            ErrorKind::NoInboundCapacity | ErrorKind::LspNotAgreed | ErrorKind::NeedsChannel => {
                StatusCode::CONFLICT
            }
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let fee = err.lsp_fee_msat;
        let error = ApiError::new(status, err.message).with_kind(err.kind);
        match fee {
            Some(fee) => error.with_extra("lsp_fee_sat", fee.div_ceil(1000)),
            None => error,
        }
    }
}

type Json<T> = Result<web::Json<T>, actix_web::Error>;

fn ok(value: impl serde::Serialize) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(value))
}

async fn wallet_state(_: Authenticated, context: web::Data<WebContext>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "has_seed": context.lightning.has_seed() }))
}

/// Creates the wallet. The words appear only on the box's screen; a box without a screen
/// sends them once in this answer.
async fn create_wallet(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    let seed = context.lightning.create_seed()?;
    let mut words = seed.words();
    match &context.display {
        Some(display) => {
            display
                .show_seed_words(std::mem::take(&mut *words))
                .await
                .map_err(|err| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string()))?;
            ok(serde_json::json!({
                "shown_on": "screen",
                "message": "Write down the 24 words shown on the box's screen (KEY1 turns the \
                            page). They are the only way to recover your funds.",
            }))
        }
        None => ok(serde_json::json!({
            "shown_on": "page",
            "words": &*words,
            "message": "Write down these 24 words now: they are shown only once and are the \
                        only way to recover your funds.",
        })),
    }
}

/// Shows the 24 words again on the box's screen (pages of six; cleared after two minutes
/// without a key press), for writing them down. Never on the page.
async fn show_words_again(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    let Some(display) = &context.display else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "This box has no screen, so the words were shown once on the page when the wallet \
             was made; plugnode never shows them on a page again.",
        ));
    };
    let mut words = context.lightning.seed_words()?;
    display
        .show_seed_words(std::mem::take(&mut *words))
        .await
        .map_err(|err| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string()))?;
    ok(serde_json::json!({
        "shown_on": "screen",
        "message": "The 24 words are on the box's screen (KEY1 turns the page).",
    }))
}

#[derive(Deserialize)]
struct WithdrawRequest {
    address: String,
    /// Everything (less the reserve kept for closing channels) when absent.
    amount_sat: Option<u64>,
    /// The web password again, unless the session typed it within 5 minutes.
    #[serde(default)]
    password: Option<Secret>,
}

/// Sends on-chain: needs the password again and, on a box with keys, KEY2 on the box
/// (the e-ink shows the amount and the address). Blocks until the box answers.
async fn withdraw(
    session: Authenticated,
    http: HttpRequest,
    auth: web::Data<Auth>,
    context: web::Data<WebContext>,
    request: Json<WithdrawRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body(
        request,
        "{\"address\": \"bc1…\", \"amount_sat\": 50000, \"password\": null}",
    )?;
    // Mistakes in the request first: no password, no key press for what cannot be sent.
    let balances = context.lightning.balances()?;
    context
        .lightning
        .check_withdrawal(&request.address, request.amount_sat)?;
    auth.require_fresh(&session, auth::client_of(&http), request.password)
        .await?;
    if let Some(display) = context.display.as_ref().filter(|d| d.state().has_keys) {
        let amount = match request.amount_sat {
            Some(sat) => crate::display::widgets::sats(sat),
            None => format!(
                "all: {}",
                crate::display::widgets::sats(balances.onchain_spendable_sat)
            ),
        };
        let question = WithdrawalQuestion {
            amount,
            address: request.address.trim().to_string(),
        };
        key_press::confirmed(
            display.confirm(question).await,
            Asked {
                what: "the withdrawal",
                nothing_done: "nothing was sent",
            },
        )?;
    }
    let txid = context
        .lightning
        .send_onchain(&request.address, request.amount_sat)
        .await?;
    ok(serde_json::json!({ "txid": txid }))
}

#[derive(Deserialize)]
struct RestoreRequest {
    words: Secret,
    /// The web password again, unless the session typed it within 5 minutes.
    #[serde(default)]
    password: Option<Secret>,
}

async fn restore_wallet(
    session: Authenticated,
    http: HttpRequest,
    auth: web::Data<Auth>,
    context: web::Data<WebContext>,
    request: Json<RestoreRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body(request, "{\"words\": \"24 words separated by spaces\"}")?;
    // A mistyped word is named before the password is asked for.
    if let Err(err) = crate::lightning::Seed::from_words(request.words.expose()) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, err.to_string())
            .with_kind(ErrorKind::InvalidInput));
    }
    auth.require_fresh(&session, auth::client_of(&http), request.password)
        .await?;
    match context.lightning.restore_seed(request.words.expose()) {
        Ok(()) => ok(serde_json::json!({ "ok": true })),
        Err(RestoreError::Words(err)) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, err.to_string())
                .with_kind(ErrorKind::InvalidInput))
        }
        Err(RestoreError::Store(err)) => Err(err.into()),
    }
}

async fn info(_: Authenticated, context: web::Data<WebContext>) -> Result<HttpResponse, ApiError> {
    ok(context.lightning.node_info()?)
}

async fn balances(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    ok(context.lightning.balances()?)
}

async fn new_address(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    let address = context.lightning.new_onchain_address().await?;
    ok(serde_json::json!({ "address": address }))
}

async fn sync_wallets(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    context.lightning.sync_wallets().await?;
    ok(serde_json::json!({ "ok": true }))
}

#[derive(Deserialize)]
struct PeerRequest {
    node_id: String,
    address: String,
}

async fn connect_peer(
    _: Authenticated,
    context: web::Data<WebContext>,
    request: Json<PeerRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body(
        request,
        "{\"node_id\": \"02…\", \"address\": \"host:port\"}",
    )?;
    context
        .lightning
        .connect_peer(&request.node_id, &request.address)
        .await?;
    ok(serde_json::json!({ "ok": true }))
}

async fn list_channels(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    ok(context.lightning.list_channels()?)
}

async fn open_channel(
    _: Authenticated,
    context: web::Data<WebContext>,
    request: Json<OpenChannel>,
) -> Result<HttpResponse, ApiError> {
    let request = body(
        request,
        "{\"node_id\": \"02…\", \"address\": \"host:port\", \"amount_sat\": 100000, \
         \"push_msat\": 0, \"public\": false}",
    )?;
    let id = context.lightning.open_channel(request).await?;
    ok(serde_json::json!({ "user_channel_id": id }))
}

#[derive(Deserialize, Default)]
struct CloseRequest {
    #[serde(default)]
    force: bool,
    /// For a force close: the web password again, unless typed within 5 minutes.
    #[serde(default)]
    password: Option<Secret>,
}

async fn close_channel(
    session: Authenticated,
    http: HttpRequest,
    auth: web::Data<Auth>,
    context: web::Data<WebContext>,
    id: web::Path<String>,
    request: Option<web::Json<CloseRequest>>,
) -> Result<HttpResponse, ApiError> {
    let request = request.map(web::Json::into_inner).unwrap_or_default();
    if request.force {
        auth.require_fresh(&session, auth::client_of(&http), request.password)
            .await?;
    }
    context.lightning.close_channel(&id, request.force).await?;
    ok(serde_json::json!({ "ok": true }))
}

#[derive(Deserialize)]
struct InvoiceRequest {
    amount_msat: Option<u64>,
    #[serde(default)]
    description: String,
    #[serde(default = "default_expiry")]
    expiry_secs: u32,
    /// The most a liquidity provider may keep, when the payment needs a new channel (the
    /// user approved it); without it such a payment answers 409 with the fee.
    max_lsp_fee_sat: Option<u64>,
}

fn default_expiry() -> u32 {
    3600
}

async fn create_invoice(
    _: Authenticated,
    context: web::Data<WebContext>,
    request: Json<InvoiceRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body(
        request,
        "{\"amount_msat\": 21000, \"description\": \"coffee\", \"expiry_secs\": 3600, \
         \"max_lsp_fee_sat\": null}",
    )?;
    let approval = FeeApproval::Asked(request.max_lsp_fee_sat.map(|sat| sat.saturating_mul(1000)));
    ok(context
        .lightning
        .receive(
            request.amount_msat,
            InvoiceDescription::Text(request.description),
            request.expiry_secs,
            approval,
        )
        .await?)
}

/// The liquidity provider and what the box can receive without it.
async fn lsp_state(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    ok(serde_json::json!({
        "lsp": context.lightning.lsp(),
        "receivable_sat": context.lightning.receivable_msat().ok().map(|m| m / 1000),
    }))
}

#[derive(Deserialize)]
struct LspAnswer {
    agree: bool,
}

/// The owner's answer: use the provider for just-in-time channels, or not.
async fn lsp_answer(
    _: Authenticated,
    context: web::Data<WebContext>,
    request: Json<LspAnswer>,
) -> Result<HttpResponse, ApiError> {
    let request = body(request, "{\"agree\": true}")?;
    context.lightning.agree_to_lsp(request.agree)?;
    ok(serde_json::json!({ "lsp": context.lightning.lsp() }))
}

#[derive(Deserialize)]
struct OfferRequest {
    amount_msat: Option<u64>,
    #[serde(default)]
    description: String,
}

async fn create_offer(
    _: Authenticated,
    context: web::Data<WebContext>,
    request: Json<OfferRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body(
        request,
        "{\"amount_msat\": null, \"description\": \"tips\"}",
    )?;
    let offer = context
        .lightning
        .create_offer(request.amount_msat, &request.description)
        .await?;
    ok(serde_json::json!({ "offer": offer }))
}

#[derive(Deserialize)]
struct PayRequest {
    /// What the user pasted: an invoice or an offer, bare, behind `lightning:` or in a
    /// `bitcoin:` link (read by [`crate::lightning::payment_request`]).
    invoice: String,
    amount_msat: Option<u64>,
    max_fee_msat: Option<u64>,
    payer_note: Option<String>,
}

async fn pay(
    _: Authenticated,
    context: web::Data<WebContext>,
    request: Json<PayRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body(request, "{\"invoice\": \"lnbc…\", \"amount_msat\": null}")?;
    ok(context
        .lightning
        .pay(
            &request.invoice,
            request.amount_msat,
            request.max_fee_msat,
            request.payer_note,
        )
        .await?)
}

#[derive(Deserialize)]
struct KeysendRequest {
    node_id: String,
    amount_msat: u64,
}

async fn keysend(
    _: Authenticated,
    context: web::Data<WebContext>,
    request: Json<KeysendRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body(request, "{\"node_id\": \"02…\", \"amount_msat\": 1000}")?;
    ok(context
        .lightning
        .keysend(&request.node_id, request.amount_msat)
        .await?)
}

async fn list_payments(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    ok(context.lightning.list_payments()?)
}

#[derive(Deserialize)]
struct DecodeRequest {
    text: String,
}

/// What an invoice or offer asks for, without paying it: read as `pay` reads it, so what
/// decodes here pays there. Works while the node is not running.
async fn decode(
    _: Authenticated,
    context: web::Data<WebContext>,
    request: Json<DecodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body(request, "{\"text\": \"lnbc…\"}")?;
    ok(context
        .lightning
        .read_payment_request(&request.text)?
        .summary())
}

#[derive(Deserialize)]
struct QrQuery {
    text: String,
}

/// An SVG QR code of `text` (an invoice, an offer or an address), for the page to show.
/// Drawn by the box with the QR encoder the screens use, so the page needs no encoder of
/// its own.
async fn qr_svg(
    _: Authenticated,
    query: Result<web::Query<QrQuery>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let text = query
        .map_err(|err| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("Ask like /api/qr?text=… ({err})."),
            )
        })?
        .into_inner()
        .text;
    let svg = qr_svg_of(&text)?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(svg))
}

fn qr_svg_of(text: &str) -> Result<String, ApiError> {
    if text.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "There is nothing to draw: give the text as ?text=…",
        ));
    }
    let modules = qr::for_page(text)
        .map_err(|too_long| ApiError::new(StatusCode::BAD_REQUEST, too_long.to_string()))?;
    Ok(svg(&modules))
}

/// The code as one SVG path, one unit per module, with the standard 4-module quiet zone.
fn svg(modules: &qr::Modules) -> String {
    const QUIET: usize = 4;
    let side = modules.width() + 2 * QUIET;
    let mut path = String::new();
    for (x, y) in modules.dark_modules() {
        let (x, y) = (x + QUIET, y + QUIET);
        let _ = write!(path, "M{x} {y}h1v1h-1z");
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{side}\" height=\"{side}\" \
         fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws the SVG's modules into a picture and reads it back with a QR decoder.
    fn read_back(svg: &str) -> String {
        let side: usize = svg
            .split("viewBox=\"0 0 ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        let d = svg
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let mut dark = vec![false; side * side];
        for module in d.split('M').filter(|m| !m.is_empty()) {
            let xy = module.trim_end_matches("h1v1h-1z");
            let (x, y) = xy.split_once(' ').unwrap();
            let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
            dark[y * side + x] = true;
        }
        const SCALE: usize = 4;
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(side * SCALE, side * SCALE, |x, y| {
                if dark[(y / SCALE) * side + x / SCALE] {
                    0
                } else {
                    255
                }
            });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the picture");
        grids[0].decode().unwrap().1
    }

    #[test]
    fn the_qr_code_reads_back_as_the_text() {
        let invoice = format!(
            "LIGHTNING:LNBCRT{}",
            "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".repeat(12)
        );
        assert_eq!(read_back(&qr_svg_of(&invoice).unwrap()), invoice);
        let address = "bitcoin:bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        assert_eq!(read_back(&qr_svg_of(address).unwrap()), address);
    }

    #[test]
    fn empty_and_oversized_texts_are_refused_with_a_reason() {
        assert!(qr_svg_of("")
            .unwrap_err()
            .message
            .contains("nothing to draw"));
        let long = "A".repeat(qr::MAX_TEXT + 1);
        assert!(qr_svg_of(&long).unwrap_err().message.contains("too long"));
    }
}
