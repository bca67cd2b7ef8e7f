//! The LNDHub API (BlueWallet, Zeus) on its own listener. Each LNDHub login is one
//! pairing connection: the same permissions, budget, expiry and revocation as a Nostr
//! Wallet Connect app, through the same [`Wallet`].
//!
//! The app scans `lndhub://<login>:<password>@http://<box>:<port>` and calls, at the root:
//!
//! | call                               | answer                                               |
//! |------------------------------------|------------------------------------------------------|
//! | `POST /auth`                       | `{"refresh_token", "access_token"}`                  |
//! | `GET /getinfo`                     | the node in lnd's words (`identity_pubkey`, …)       |
//! | `GET /balance`                     | `{"BTC": {"AvailableBalance": sat}}`: what it may spend |
//! | `GET /gettxs`                      | its payments (`paid_invoice`)                        |
//! | `GET /getuserinvoices[?limit=N]`   | its invoices (`user_invoice`)                        |
//! | `GET /getpending`, `GET /getbtc`   | `[]`: no on-chain deposits for apps on this box      |
//! | `GET /decodeinvoice?invoice=`      | lnd's decoded invoice                                |
//! | `GET /checkpayment/{payment_hash}` | `{"paid": bool}`                                     |
//! | `POST /addinvoice`                 | `{"r_hash", "payment_request", "pay_req", …}`        |
//! | `POST /payinvoice`                 | lnd's payment answer (`payment_preimage`, …)         |
//!
//! - [`routes`]: the calls; [`reply`]: the answers' shapes; [`request`]: reading bodies,
//!   tokens and amounts; [`error`]: the error codes; [`tokens`]: the token table;
//!   [`throttle`]: slowing password guessing.
//!
//! Shapes and codes follow the reference server (BlueWallet/LndHub) and what the apps read
//! (BlueWallet's `lightning-custodian-wallet.ts`, Zeus's `backends/LndHub.ts`): see each
//! module. Nothing here logs a password or a token.

pub mod error;
pub mod reply;
pub mod request;
pub mod routes;
pub mod throttle;
pub mod tokens;

use super::wallet::Wallet;
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};
use routes::Hub;
use std::net::TcpListener;
use tracing::info;

/// The running LNDHub server.
pub struct LndhubServer {
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LndhubServer {
    /// Serves LNDHub on `listener` until [`LndhubServer::stop`].
    pub fn start(listener: TcpListener, wallet: Wallet) -> std::io::Result<LndhubServer> {
        let address = listener.local_addr()?;
        let hub = web::Data::new(Hub {
            wallet,
            tokens: Default::default(),
            throttle: Default::default(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(hub.clone())
                // "http://box:3000/" and "//getinfo" reach the same calls.
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .configure(routes::configure)
        })
        // A few phones at most: one worker, and the supervisor's memory stays small.
        .workers(1)
        // The supervisor owns the signals and the shutdown order.
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        info!("LNDHub at http://{address}/");
        Ok(LndhubServer { handle, task })
    }

    /// Stops taking requests; a payment still waited for keeps its reservation and is
    /// settled by the settler.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests;
