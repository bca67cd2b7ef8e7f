//! The LNDHub API (BlueWallet, Zeus) on its own listener.

use super::wallet::Wallet;
use actix_web::{web, App, HttpServer};
use std::net::TcpListener;

/// The running LNDHub server.
pub struct LndhubServer {
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LndhubServer {
    pub fn start(listener: TcpListener, wallet: Wallet) -> std::io::Result<LndhubServer> {
        let wallet = web::Data::new(wallet);
        let server = HttpServer::new(move || App::new().app_data(wallet.clone()))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(5)
            .listen(listener)?
            .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(LndhubServer { handle, task })
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}
