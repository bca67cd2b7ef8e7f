//! Two (or more) plugnode boxes with Lightning nodes on one simulated chain: the chain is a
//! regtest-sim the test owns; each box's own "bitcoind" is a regtest-sim proxy onto it.

use super::*;
use plugnode_testkit::sim::SimNode;
use serde_json::json;

/// Slow things (a payment round trip in a debug build on a loaded CI machine, a channel
/// waiting for its confirmations) get this long.
pub const LN_TIMEOUT: Duration = Duration::from_secs(120);

/// The shared chain.
pub struct Chain {
    pub sim: SimNode,
}

impl Chain {
    /// A chain out of initial block download (101 blocks).
    pub fn start(dir: &Path) -> Chain {
        let sim = SimNode::builder(regtest_sim(dir), dir.join("chain"))
            .spawn()
            .expect("the chain's regtest-sim starts");
        let chain = Chain { sim };
        chain.mine(101);
        chain
    }

    pub fn mine(&self, count: u32) {
        self.mine_to(count, &SimNode::anyone_can_spend_address());
    }

    pub fn mine_to(&self, count: u32, address: &str) {
        self.sim.mine_blocks(count, address).expect("mining works");
    }

    pub fn mempool_size(&self) -> usize {
        self.sim
            .rpc()
            .call("getrawmempool", json!([]))
            .map(|v| v.as_array().map(Vec::len).unwrap_or(0))
            .unwrap_or(0)
    }
}

/// A box with a Lightning node and a wallet.
pub struct LnBox {
    pub node: Plugnode,
    pub config: TestConfig,
}

impl LnBox {
    /// Starts a box on `chain`, creates its wallet through the API, and waits until its
    /// Lightning node runs.
    pub fn start(dir: &Path, chain: &Chain) -> LnBox {
        LnBox::start_with(TestConfig::lightning_box(dir, &chain.sim)).0
    }

    /// Starts a box from `config`, creates its wallet, waits for Lightning; returns the
    /// box and its 24 words.
    pub fn start_with(config: TestConfig) -> (LnBox, String) {
        let node = Plugnode::start(&config);
        let ln = LnBox { node, config };
        ln.node
            .wait_status("bitcoind ready", |s| state(s) == "ready");
        let (code, answer) = ln.post("/api/wallet/create", json!({}));
        assert_eq!(code, 200, "{answer}");
        let words: Vec<&str> = answer["words"]
            .as_array()
            .expect("a box without a screen gets its words once")
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        assert_eq!(words.len(), 24);
        let words = words.join(" ");
        ln.wait_running();
        (ln, words)
    }

    /// Starts a box with a (simulated) screen from `config`, creates its wallet, whose
    /// words go to the screen and never into the answer, takes them off the screen as the
    /// owner does once they are on paper (KEY1 to the last page, KEY2), and waits for
    /// Lightning. On the simulated panel the page's keys count as the box's own.
    pub fn start_with_screen(config: TestConfig) -> LnBox {
        assert_eq!(config.panel, "simulated", "a box with a screen");
        let node = Plugnode::start(&config);
        let ln = LnBox { node, config };
        ln.node
            .wait_status("bitcoind ready", |s| state(s) == "ready");
        let (code, answer) = ln.post("/api/wallet/create", json!({}));
        assert_eq!(code, 200, "{answer}");
        assert_eq!(answer["shown_on"], "screen", "{answer}");
        assert!(
            answer.get("words").is_none(),
            "no word in the answer: {answer}"
        );
        for key in [1, 1, 1, 2] {
            let (code, answer) = ln.post("/api/display/key", json!({ "key": key }));
            assert_eq!(code, 202, "KEY{key}: {answer}");
        }
        ln.node.wait_status("the words to leave the screen", |s| {
            !s["display"]["screen"]
                .as_str()
                .unwrap_or("Seed")
                .starts_with("Seed")
        });
        ln.wait_running();
        ln
    }

    pub fn status(&self) -> Value {
        self.node.status().expect("the status answers")
    }

    /// Starts the box again (same data, same ports) after it stopped or was killed.
    pub fn restart(&mut self) {
        self.node = Plugnode::start(&self.config);
        self.wait_running();
    }

    pub fn wait_running(&self) {
        self.node
            .wait_status_for("the Lightning node to run", LN_TIMEOUT, |s| {
                s["lightning"]["state"]["state"] == "running"
            });
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (code, text) = self
            .node
            .api("POST", path, Some(&body.to_string()))
            .unwrap_or_else(|| panic!("POST {path} got no answer; log:\n{}", self.node.log()));
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let (code, text) = self
            .node
            .api("GET", path, None)
            .unwrap_or_else(|| panic!("GET {path} got no answer; log:\n{}", self.node.log()));
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn node_id(&self) -> String {
        let (code, info) = self.get("/api/lightning/info");
        assert_eq!(code, 200, "{info}");
        info["node_id"].as_str().unwrap().to_string()
    }

    pub fn peer_address(&self) -> String {
        format!("127.0.0.1:{}", self.config.lightning_port.unwrap())
    }

    pub fn onchain_address(&self) -> String {
        let (code, answer) = self.post("/api/lightning/address", json!({}));
        assert_eq!(code, 200, "{answer}");
        answer["address"].as_str().unwrap().to_string()
    }

    /// Balances, or `None` while the node is (re)starting.
    pub fn try_balances(&self) -> Option<Value> {
        let (code, balances) = self.get("/api/lightning/balances");
        (code == 200).then_some(balances)
    }

    pub fn balances(&self) -> Value {
        let (code, balances) = self.get("/api/lightning/balances");
        assert_eq!(code, 200, "{balances}");
        balances
    }

    pub fn channels(&self) -> Vec<Value> {
        let (code, channels) = self.get("/api/lightning/channels");
        assert_eq!(code, 200, "{channels}");
        channels.as_array().cloned().unwrap_or_default()
    }

    /// Gives the box's on-chain wallet a mature coinbase (50 BTC or less).
    pub fn fund(&self, chain: &Chain) {
        chain.mine_to(1, &self.onchain_address());
        chain.mine(100);
        wait_for("the coinbase to reach the wallet", LN_TIMEOUT, || {
            let _ = self.node.api("POST", "/api/lightning/sync", Some("{}"));
            (self.balances()["onchain_spendable_sat"]
                .as_u64()
                .unwrap_or(0)
                > 0)
            .then_some(())
        });
    }

    pub fn invoice(&self, amount_msat: Option<u64>, description: &str) -> String {
        let (code, answer) = self.post(
            "/api/lightning/invoices",
            json!({"amount_msat": amount_msat, "description": description}),
        );
        assert_eq!(code, 200, "{answer}");
        answer["bolt11"].as_str().unwrap().to_string()
    }

    pub fn pay(&self, invoice: &str, amount_msat: Option<u64>) -> (u16, Value) {
        self.post(
            "/api/lightning/pay",
            json!({"invoice": invoice, "amount_msat": amount_msat}),
        )
    }

    /// Our side of the (first) channel, in sat.
    pub fn outbound_sat(&self) -> u64 {
        self.channels()[0]["outbound_sat"].as_u64().unwrap()
    }

    pub fn wait_channel_usable(&self) {
        self.wait("the channel to be usable", || {
            self.channels()
                .iter()
                .any(|c| c["usable"] == true)
                .then_some(())
        });
    }

    /// After a crash: waits until the channel is usable again (`true`), or LDK closed it
    /// on start (`false`), as it does when the crash fell between a channel-monitor update
    /// and the channel manager's next save (a manager older than its monitors).
    pub fn wait_channel_resumed_or_closed_by_rule(&self) -> bool {
        self.wait("the channel to be usable or closed by LDK's rule", || {
            let usable = self.channels().iter().any(|c| c["usable"] == true);
            let closed_by_rule = self.status()["lightning"]["force_closed_on_start"] != 0;
            (usable || closed_by_rule).then_some(usable)
        })
    }

    /// Like [`wait_for`], but a timeout shows this box's log.
    pub fn wait<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + LN_TIMEOUT;
        loop {
            if let Some(value) = check() {
                return value;
            }
            if std::time::Instant::now() > deadline {
                let log = self.node.log();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                panic!(
                    "timed out waiting for {what}; last log lines:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Opens a channel from `a` to `b` and confirms it; both see it usable.
pub fn open_channel(chain: &Chain, a: &LnBox, b: &LnBox, amount_sat: u64, push_msat: u64) {
    let (code, answer) = a.post(
        "/api/lightning/channels",
        json!({
            "node_id": b.node_id(),
            "address": b.peer_address(),
            "amount_sat": amount_sat,
            "push_msat": push_msat,
        }),
    );
    assert_eq!(code, 200, "{answer}");
    wait_for("the funding transaction", LN_TIMEOUT, || {
        (chain.mempool_size() > 0).then_some(())
    });
    chain.mine(6);
    a.wait_channel_usable();
    b.wait_channel_usable();
}

/// An invoice of a node nobody runs (a box only makes invoices its channels can take), for
/// `amount_msat`, made `age_secs` ago and valid for an hour.
pub fn foreign_invoice(amount_msat: u64, age_secs: u64, description: &str) -> String {
    use ldk_node::bitcoin::hashes::{sha256, Hash};
    use ldk_node::bitcoin::secp256k1::{Secp256k1, SecretKey};
    use ldk_node::lightning_invoice::{Currency, InvoiceBuilder};
    use ldk_node::lightning_types::payment::PaymentSecret;
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[7u8; 32]).unwrap();
    InvoiceBuilder::new(Currency::Regtest)
        .description(description.into())
        .payment_hash(sha256::Hash::from_byte_array([amount_msat as u8 ^ 1; 32]))
        .payment_secret(PaymentSecret([2u8; 32]))
        .timestamp(std::time::SystemTime::now() - Duration::from_secs(age_secs))
        .expiry_time(Duration::from_secs(3600))
        .min_final_cltv_expiry_delta(144)
        .amount_milli_satoshis(amount_msat)
        .build_signed(|hash| secp.sign_ecdsa_recoverable(hash, &key))
        .unwrap()
        .to_string()
}

/// An offer for `network` signed by some other node, for 21 sat, expiring at `expires_at`
/// (Unix time) if given. It has no paths: the box must refuse it before reaching out.
pub fn foreign_offer(network: ldk_node::bitcoin::Network, expires_at: Option<u64>) -> String {
    use ldk_node::bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
    use ldk_node::lightning::offers::offer::OfferBuilder;
    let key = SecretKey::from_slice(&[9u8; 32]).unwrap();
    let mut builder = OfferBuilder::new(PublicKey::from_secret_key(&Secp256k1::new(), &key))
        .chain(network)
        .amount_msats(21_000)
        .description("elsewhere".into());
    if let Some(at) = expires_at {
        builder = builder.absolute_expiry(Duration::from_secs(at));
    }
    builder.build().unwrap().to_string()
}
