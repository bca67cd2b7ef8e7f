//! bitcoind's health over JSON-RPC (`bitcoincore-rpc`), as the supervisor needs it.
//!
//! `bitcoincore-rpc` is a blocking client: every call runs on the blocking pool so the
//! supervisor's loop never stalls behind a slow answer (bitcoind answers slowly while it
//! flushes its cache; that is not a hang).

use super::credentials::RpcUser;
use crate::status::ChainInfo;
use bitcoincore_rpc::jsonrpc;
use bitcoincore_rpc::RpcApi;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Why a health check did not give chain facts.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RpcFailure {
    /// bitcoind is starting (error -28); the message is bitcoind's ("Loading block index…").
    #[error("bitcoind is starting: {0}")]
    WarmingUp(String),
    /// Nothing answers on the RPC port yet (or any more).
    #[error("bitcoind's RPC port does not answer: {0}")]
    Unreachable(String),
    /// bitcoind rejected our RPC password (HTTP 401).
    #[error("bitcoind rejected plugnode's RPC password")]
    Unauthorized,
    /// bitcoind did not answer in time (busy, e.g. flushing its cache).
    #[error("bitcoind did not answer within {0:?}")]
    Timeout(Duration),
    #[error("bitcoind RPC error: {0}")]
    Other(String),
}

/// A supervisor-side RPC client.
#[derive(Clone)]
pub struct RpcClient {
    client: Arc<bitcoincore_rpc::Client>,
    timeout: Duration,
}

impl RpcClient {
    pub fn new(port: u16, user: &RpcUser, timeout: Duration) -> Result<Self, RpcFailure> {
        let transport = jsonrpc::simple_http::SimpleHttpTransport::builder()
            .url(&format!("127.0.0.1:{port}"))
            .map_err(|err| RpcFailure::Other(err.to_string()))?
            .auth(user.name.as_str(), Some(user.password.expose()))
            .timeout(timeout)
            .build();
        let client =
            bitcoincore_rpc::Client::from_jsonrpc(jsonrpc::Client::with_transport(transport));
        Ok(RpcClient {
            client: Arc::new(client),
            timeout,
        })
    }

    /// Chain facts from `getblockchaininfo` and `getnetworkinfo`.
    pub async fn chain_info(&self) -> Result<ChainInfo, RpcFailure> {
        let timeout = self.timeout;
        let client = Arc::clone(&self.client);
        run_blocking(move || {
            let chain: Value = client
                .call("getblockchaininfo", &[])
                .map_err(|e| classify(e, timeout))?;
            let network: Value = client
                .call("getnetworkinfo", &[])
                .map_err(|e| classify(e, timeout))?;
            parse_chain_info(&chain, &network)
        })
        .await
    }

    /// Whether an output is unspent in the chain (`gettxout`, mempool not counted):
    /// `false` once a confirmed transaction spent it.
    pub async fn is_unspent_in_chain(&self, txid: &str, vout: u32) -> Result<bool, RpcFailure> {
        let timeout = self.timeout;
        let client = Arc::clone(&self.client);
        let txid = txid.to_string();
        run_blocking(move || {
            let out: Value = client
                .call("gettxout", &[txid.into(), vout.into(), false.into()])
                .map_err(|err| classify(err, timeout))?;
            Ok(!out.is_null())
        })
        .await
    }

    /// The `stop` RPC: bitcoind answers at once and shuts down in the background.
    pub async fn stop(&self) -> Result<(), RpcFailure> {
        let timeout = self.timeout;
        let client = Arc::clone(&self.client);
        run_blocking(move || {
            client
                .stop()
                .map(|_| ())
                .map_err(|err| classify(err, timeout))
        })
        .await
    }
}

async fn run_blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, RpcFailure> + Send + 'static,
) -> Result<T, RpcFailure> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or_else(|err| Err(RpcFailure::Other(format!("RPC task failed: {err}"))))
}

fn parse_chain_info(chain: &Value, network: &Value) -> Result<ChainInfo, RpcFailure> {
    let field = |name: &str| {
        chain
            .get(name)
            .ok_or_else(|| RpcFailure::Other(format!("getblockchaininfo has no `{name}`")))
    };
    let u64_field = |name: &str| {
        field(name)?
            .as_u64()
            .ok_or_else(|| RpcFailure::Other(format!("getblockchaininfo `{name}` is not a number")))
    };
    Ok(ChainInfo {
        blocks: u64_field("blocks")?,
        headers: u64_field("headers")?,
        best_block_hash: field("bestblockhash")?
            .as_str()
            .unwrap_or_default()
            .to_string(),
        verification_progress: field("verificationprogress")?.as_f64().unwrap_or(0.0),
        initial_block_download: field("initialblockdownload")?.as_bool().unwrap_or(true),
        pruned: field("pruned")?.as_bool().unwrap_or(false),
        connections: network
            .get("connections")
            .and_then(Value::as_u64)
            .unwrap_or(0) as u32,
    })
}

fn classify(err: bitcoincore_rpc::Error, timeout: Duration) -> RpcFailure {
    use jsonrpc::simple_http::Error as HttpError;
    match err {
        bitcoincore_rpc::Error::JsonRpc(jsonrpc::Error::Rpc(rpc)) if rpc.code == -28 => {
            RpcFailure::WarmingUp(rpc.message)
        }
        bitcoincore_rpc::Error::JsonRpc(jsonrpc::Error::Transport(transport)) => {
            match transport.downcast_ref::<HttpError>() {
                Some(HttpError::HttpErrorCode(401)) => RpcFailure::Unauthorized,
                Some(HttpError::SocketError(io)) => match io.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                        RpcFailure::Timeout(timeout)
                    }
                    _ => RpcFailure::Unreachable(io.to_string()),
                },
                _ => RpcFailure::Unreachable(transport.to_string()),
            }
        }
        other => RpcFailure::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_fields_bitcoin_core_v30_sends() {
        let chain = json!({
            "chain": "regtest", "blocks": 208, "headers": 210,
            "bestblockhash": "200b5380552c18e2b4d673ba800577ef574b9bc82964ea900c76b6d26c1e0585",
            "verificationprogress": 0.5, "initialblockdownload": false, "pruned": true,
            "warnings": []
        });
        let network = json!({"connections": 8});
        let info = parse_chain_info(&chain, &network).unwrap();
        assert_eq!(info.blocks, 208);
        assert_eq!(info.headers, 210);
        assert!(info.pruned);
        assert!(!info.initial_block_download);
        assert_eq!(info.connections, 8);
        assert_eq!(info.progress_percent(), 50);
    }

    #[test]
    fn a_missing_field_is_an_error_not_a_zero() {
        let err = parse_chain_info(&json!({"blocks": 1}), &json!({})).unwrap_err();
        assert!(err.to_string().contains("headers"), "{err}");
    }
}
