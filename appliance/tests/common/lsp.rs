//! A liquidity provider for the tests: ldk-node's own LSPS2 service on the shared chain, in
//! the test process, funded, its events handled as any ldk-node application must.

use super::lightning::{Chain, LN_TIMEOUT};
use super::{free_port, wait_for};
use ldk_node::bitcoin::Network;
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::liquidity::LSPS2ServiceConfig;
use ldk_node::{Builder, Node};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The provider's terms in the tests: 1 % of the payment, at least 2 000 sat, for payments
/// of 10 000 sat to 1 million sat; the channel 10 % larger than the payment.
pub const MIN_FEE_SAT: u64 = 2_000;
pub const FEE_PPM: u64 = 10_000;
pub const MAX_PAYMENT_SAT: u64 = 1_000_000;

pub struct Lsp {
    pub node: Arc<Node>,
    pub address: String,
    running: Arc<AtomicBool>,
    pump: Option<std::thread::JoinHandle<()>>,
}

impl Lsp {
    /// Starts the provider (with `token` required when given) and gives it coins.
    pub fn start(dir: &Path, chain: &Chain, token: Option<&str>) -> Lsp {
        let text = std::fs::read_to_string(chain.sim.cookie_path()).expect("the sim's cookie");
        let (user, password) = text.trim().split_once(':').expect("user:password");
        let port = free_port();
        let mut builder = Builder::new();
        builder.set_network(Network::Regtest);
        builder.set_storage_dir_path(dir.join("lsp").display().to_string());
        builder.set_chain_source_bitcoind_rpc(
            "127.0.0.1".into(),
            chain.sim.rpc_port(),
            user.into(),
            password.into(),
        );
        builder.set_gossip_source_p2p();
        builder
            .set_listening_addresses(vec![
                SocketAddress::from_str(&format!("127.0.0.1:{port}")).unwrap()
            ])
            .unwrap();
        builder.set_liquidity_provider_lsps2(LSPS2ServiceConfig {
            require_token: token.map(String::from),
            advertise_service: false,
            channel_opening_fee_ppm: FEE_PPM as u32,
            channel_over_provisioning_ppm: 100_000,
            min_channel_opening_fee_msat: MIN_FEE_SAT * 1000,
            min_channel_lifetime: 100,
            max_client_to_self_delay: 1024,
            min_payment_size_msat: 10_000_000,
            max_payment_size_msat: MAX_PAYMENT_SAT * 1000,
            client_trusts_lsp: false,
        });
        let node = Arc::new(builder.build().expect("the provider builds"));
        node.start().expect("the provider starts");
        let running = Arc::new(AtomicBool::new(true));
        let pump = {
            let (node, running) = (Arc::clone(&node), Arc::clone(&running));
            std::thread::spawn(move || {
                while running.load(Ordering::SeqCst) {
                    if node.next_event().is_some() {
                        let _ = node.event_handled();
                    } else {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                }
            })
        };
        let lsp = Lsp {
            node,
            address: format!("127.0.0.1:{port}"),
            running,
            pump: Some(pump),
        };
        // ldk-node syncs its wallets on its own once started; asking for a sync while the
        // first one runs trips its debug assertion, so wait for that one first.
        wait_for("the provider's first wallet sync", LN_TIMEOUT, || {
            let status = lsp.node.status();
            (status.latest_onchain_wallet_sync_timestamp.is_some()
                && status.latest_lightning_wallet_sync_timestamp.is_some())
            .then_some(())
        });
        let address = lsp.node.onchain_payment().new_address().unwrap();
        chain.mine_to(1, &address.to_string());
        chain.mine(100);
        wait_for("the provider's coins", LN_TIMEOUT, || {
            let _ = lsp.node.sync_wallets();
            (lsp.node.list_balances().spendable_onchain_balance_sats > 0).then_some(())
        });
        lsp
    }

    pub fn node_id(&self) -> String {
        self.node.node_id().to_string()
    }

    /// The `[lightning.lsp]` section naming this provider.
    pub fn config(&self, token: Option<&str>) -> String {
        let token = token
            .map(|t| format!("token = {t:?}\n"))
            .unwrap_or_default();
        format!(
            "[lightning.lsp]\nnode_id = {:?}\naddress = {:?}\nname = \"Test LSP\"\n{token}",
            self.node_id(),
            self.address
        )
    }

    /// The fee the provider keeps of a payment of `amount_sat`.
    pub fn fee_sat(amount_sat: u64) -> u64 {
        (amount_sat * FEE_PPM / 1_000_000).max(MIN_FEE_SAT)
    }

    pub fn stop(mut self) {
        self.running.store(false, Ordering::SeqCst);
        if let Some(pump) = self.pump.take() {
            let _ = pump.join();
        }
        let _ = self.node.stop();
    }
}
