//! The wallet and Lightning part of the JSON API: a thin layer over [`LightningHandle`]
//! that turns its errors into HTTP answers with the same words.

use super::auth::{ApiError, Authenticated};
use super::WebContext;
use crate::lightning::{ErrorKind, LightningError, OpenChannel, RestoreError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/api/wallet", web::get().to(wallet_state))
        .route("/api/wallet/create", web::post().to(create_wallet))
        .route("/api/wallet/restore", web::post().to(restore_wallet))
        .route("/api/lightning/info", web::get().to(info))
        .route("/api/lightning/balances", web::get().to(balances))
        .route("/api/lightning/address", web::post().to(new_address))
        .route("/api/lightning/sync", web::post().to(sync_wallets))
        .route("/api/lightning/peers", web::post().to(connect_peer))
        .route("/api/lightning/channels", web::get().to(list_channels))
        .route("/api/lightning/channels", web::post().to(open_channel))
        .route(
            "/api/lightning/channels/{id}/close",
            web::post().to(close_channel),
        )
        .route("/api/lightning/invoices", web::post().to(create_invoice))
        .route("/api/lightning/offers", web::post().to(create_offer))
        .route("/api/lightning/pay", web::post().to(pay))
        .route("/api/lightning/keysend", web::post().to(keysend))
        .route("/api/lightning/payments", web::get().to(list_payments));
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
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, err.message).with_kind(err.kind)
    }
}

type Json<T> = Result<web::Json<T>, actix_web::Error>;

fn body<T>(body: Json<T>, shape: &str) -> Result<T, ApiError> {
    body.map(web::Json::into_inner).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Send a JSON body like {shape} ({err})."),
        )
    })
}

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
    match &context.display {
        Some(display) => {
            display
                .show_seed_words(seed.words())
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
            "words": seed.words(),
            "message": "Write down these 24 words now: they are shown only once and are the \
                        only way to recover your funds.",
        })),
    }
}

#[derive(Deserialize)]
struct RestoreRequest {
    words: String,
}

async fn restore_wallet(
    _: Authenticated,
    context: web::Data<WebContext>,
    request: Json<RestoreRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body(request, "{\"words\": \"24 words separated by spaces\"}")?;
    match context.lightning.restore_seed(&request.words) {
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
}

async fn close_channel(
    _: Authenticated,
    context: web::Data<WebContext>,
    id: web::Path<String>,
    request: Option<web::Json<CloseRequest>>,
) -> Result<HttpResponse, ApiError> {
    let force = request.map(|r| r.force).unwrap_or(false);
    context.lightning.close_channel(&id, force).await?;
    ok(serde_json::json!({ "ok": true }))
}

#[derive(Deserialize)]
struct InvoiceRequest {
    amount_msat: Option<u64>,
    #[serde(default)]
    description: String,
    #[serde(default = "default_expiry")]
    expiry_secs: u32,
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
        "{\"amount_msat\": 21000, \"description\": \"coffee\", \"expiry_secs\": 3600}",
    )?;
    ok(context
        .lightning
        .create_invoice(
            request.amount_msat,
            &request.description,
            request.expiry_secs,
        )
        .await?)
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
    /// A BOLT11 invoice (ln…) or a BOLT12 offer (lno…).
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
    let text = request.invoice.trim();
    let payment = if text.to_ascii_lowercase().starts_with("lno") {
        context
            .lightning
            .pay_offer(text, request.amount_msat, request.payer_note)
            .await?
    } else {
        context
            .lightning
            .pay_invoice(text, request.amount_msat, request.max_fee_msat)
            .await?
    };
    ok(payment)
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
