//! Demo only (`plugnode demo`): the demo's peer as the other side of a payment, so a
//! newcomer can try receiving (also through a just-in-time channel) and a paired app's
//! payment without a wallet of their own. Never part of a real box's API.

use super::auth::Authenticated;
use super::error::ApiError;
use super::routes::{api_routes, json_body as json};
use super::WebContext;
use crate::lightning::{ErrorKind, LightningHandle};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

api_routes! { pub fn routes, const ROUTES;
    POST "/api/demo/peer/invoice" => peer_invoice;
    POST "/api/demo/peer/pay" => peer_pay;
}

fn peer(context: &WebContext) -> Result<&LightningHandle, ApiError> {
    context.demo_peer.get().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The demo's peer is still starting; try again in a moment.",
        )
        .with_kind(ErrorKind::NotRunning)
    })
}

#[derive(Deserialize)]
struct InvoiceRequest {
    amount_msat: u64,
}

/// An invoice of the demo's peer, for a paired app to pay.
async fn peer_invoice(
    _: Authenticated,
    context: web::Data<WebContext>,
    body: Result<web::Json<InvoiceRequest>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = json(body, "{\"amount_msat\": 21000}")?;
    let invoice = peer(&context)?
        .create_invoice(Some(body.amount_msat), "a payment from a paired app", 3600)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "bolt11": invoice.bolt11 })))
}

#[derive(Deserialize)]
struct PayRequest {
    invoice: String,
}

/// The demo's peer pays an invoice of the box (through the demo's liquidity provider when
/// it opens a just-in-time channel).
async fn peer_pay(
    _: Authenticated,
    context: web::Data<WebContext>,
    body: Result<web::Json<PayRequest>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = json(body, "{\"invoice\": \"lnbcrt…\"}")?;
    let paid = peer(&context)?.pay(&body.invoice, None, None, None).await?;
    Ok(HttpResponse::Ok().json(paid))
}
