//! The simulated node: chain, block file and mempool behind one lock, and the operations
//! RPC methods need (mine, submit a transaction or a block, save the mempool).

use super::chain::{BlockEntry, BlockError, Chain};
use super::log::{iso8601, unix_now, Logger};
use super::mempool::{AcceptOptions, Accepted, Mempool};
use super::policy::Reject;
use super::settings::Settings;
use super::store::{BlockStore, StoreError};
use bitcoin::consensus::encode;
use bitcoin::{Block, BlockHash, Script, Transaction, Txid};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use tokio::sync::watch;

/// The block file's name in `<datadir>/regtest`.
pub const BLOCKS_FILE: &str = "sim-blocks.dat";
/// The saved mempool's name in `<datadir>/regtest`.
pub const MEMPOOL_FILE: &str = "sim-mempool.json";

/// Why mining or submitting a block failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("block rejected: {0}")]
    Block(#[from] BlockError),
}

/// Everything that changes while the node runs.
pub struct NodeState {
    pub chain: Chain,
    pub mempool: Mempool,
    store: BlockStore,
    /// Core's `m_cached_finished_ibd` latch.
    ibd_finished: bool,
    /// Height where the fee estimator started tracking (it never has an estimate).
    fee_first_recorded: Option<u32>,
    /// Whether a mempool file was loaded (Core's "loaded" once the load attempt finished).
    pub mempool_loaded: bool,
}

/// A rejected `sendrawtransaction`, mapped to Core's RPC errors by the RPC layer.
#[derive(Debug)]
pub enum SendError {
    /// An output of the transaction is already in the UTXO set (-27).
    AlreadyInUtxoSet,
    /// The mempool refused it.
    Rejected(Reject),
    /// Fee above `maxfeerate` (-25).
    MaxFeeExceeded,
}

impl NodeState {
    /// Opens the block file and replays it into a chain. Records that fail to parse or to
    /// connect (a torn write after a crash) are cut off the file.
    pub fn load(settings: &Settings, log: &Logger) -> Result<NodeState, StoreError> {
        let path = settings.net_path(BLOCKS_FILE);
        let (mut store, loaded) = BlockStore::open(&path)?;
        if loaded.torn_bytes > 0 {
            log.log(format!(
                "regtest-sim: dropped {} bytes of a torn block record at the end of {} (left by a crash); the chain resumes at the last complete block",
                loaded.torn_bytes,
                path.display()
            ));
        }
        let mut chain = Chain::new(settings.txindex);
        for stored in loaded.blocks {
            let offset = stored.offset;
            if let Err(err) = chain.connect(stored.block, None) {
                log.log(format!(
                    "regtest-sim: block record at offset {offset} of {} does not connect ({err}); dropping it and everything after it",
                    path.display()
                ));
                store.truncate(offset)?;
                break;
            }
        }
        let tip = chain.tip();
        log.log(format!(
            "Loaded best chain: hashBestChain={} height={} date={} progress={:.6}",
            tip.hash,
            tip.height,
            iso8601(u64::from(tip.block.header.time)),
            1.0
        ));
        Ok(NodeState {
            chain,
            mempool: Mempool::default(),
            store,
            ibd_finished: false,
            fee_first_recorded: None,
            mempool_loaded: false,
        })
    }

    /// Core's `IsInitialBlockDownload`: true while the tip is older than `max_tip_age`,
    /// then false for the rest of the process.
    pub fn is_initial_block_download(&mut self, now: u64, max_tip_age: u64, log: &Logger) -> bool {
        if self.ibd_finished {
            return false;
        }
        let tip_time = u64::from(self.chain.tip().block.header.time);
        if tip_time < now.saturating_sub(max_tip_age) {
            return true;
        }
        log.log("Leaving InitialBlockDownload (latching to false)");
        self.ibd_finished = true;
        false
    }

    /// Size of the block file (`size_on_disk`).
    pub fn size_on_disk(&self) -> u64 {
        self.store.size()
    }

    /// The `blocks` answer of `estimatesmartfee` for `target` (Core's returned target when
    /// its estimator has no data: capped at half the blocks it has tracked).
    pub fn fee_estimate_target(&self, target: u32) -> u32 {
        let target = target.max(2);
        let span = self
            .fee_first_recorded
            .map_or(0, |first| self.chain.height().saturating_sub(first));
        target.min(span / 2)
    }

    fn log_update_tip(&self, log: &Logger) {
        let tip = self.chain.tip();
        log.log(format!(
            "UpdateTip: new best={} height={} version=0x{:08x} log2_work={:.6} tx={} date='{}' progress={:.6} cache={:.1}MiB({}txo)",
            tip.hash,
            tip.height,
            tip.block.header.version.to_consensus(),
            tip.chainwork.log2(),
            tip.chain_tx,
            iso8601(u64::from(tip.block.header.time)),
            1.0,
            self.chain.utxo_count() as f64 * 100.0 / f64::from(1 << 20),
            self.chain.utxo_count()
        ));
    }

    /// Connects `block`, appends it to the block file and updates the mempool.
    fn connect_and_store(
        &mut self,
        block: Block,
        now: Option<u32>,
        ibd: bool,
        log: &Logger,
    ) -> Result<(), NodeError> {
        let entry: &BlockEntry = self.chain.connect(block, now)?;
        let height = entry.height;
        if let Err(err) = self.store.append(&entry.block) {
            self.chain.disconnect_tip();
            return Err(err.into());
        }
        let block = &self.chain.tip().block;
        let (confirmed, conflicts) = self.mempool.remove_for_block(block);
        if !confirmed.is_empty() && !ibd && self.fee_first_recorded.is_none() {
            self.fee_first_recorded = Some(height);
        }
        for txid in conflicts {
            log.log(format!(
                "regtest-sim: removed {txid} from the mempool: it conflicts with block {height}"
            ));
        }
        self.log_update_tip(log);
        Ok(())
    }

    /// Mines `count` blocks paying to `script`, taking mempool transactions parents-first.
    /// Returns once the blocks are durable on disk.
    pub fn mine(
        &mut self,
        count: u32,
        script: &Script,
        max_tip_age: u64,
        log: &Logger,
    ) -> Result<Vec<BlockHash>, NodeError> {
        let mut hashes = Vec::with_capacity(count as usize);
        let result = (|| {
            for _ in 0..count {
                let now = unix_now();
                let ibd = self.is_initial_block_download(now, max_tip_age, log);
                let (transactions, fees) = self.block_template_transactions();
                let block = self
                    .chain
                    .assemble_block(script, transactions, fees, now as u32);
                hashes.push(block.block_hash());
                self.connect_and_store(block, None, ibd, log)?;
            }
            Ok::<(), NodeError>(())
        })();
        // Whatever was connected must be durable before anyone is told about it.
        let synced = self.store.sync();
        result?;
        synced?;
        self.is_initial_block_download(unix_now(), max_tip_age, log);
        Ok(hashes)
    }

    /// Mempool transactions for the next block in entry order (parents first), within the
    /// block weight limit (Core reserves 8000 weight units for the coinbase).
    fn block_template_transactions(&self) -> (Vec<Transaction>, u64) {
        let mut weight: u64 = 8_000;
        let mut fees = 0;
        let mut included = std::collections::HashSet::new();
        let mut transactions = Vec::new();
        let tip = self.chain.tip();
        for entry in self.mempool.entries_in_order() {
            let parents_in = self
                .mempool
                .parents(&entry.txid)
                .iter()
                .all(|p| included.contains(p));
            if !parents_in
                || weight + entry.weight > super::chain::MAX_BLOCK_WEIGHT
                || !super::chain::is_final_tx(&entry.tx, tip.height + 1, tip.median_time)
            {
                continue;
            }
            weight += entry.weight;
            fees += entry.fee;
            included.insert(entry.txid);
            transactions.push(entry.tx.clone());
        }
        (transactions, fees)
    }

    /// `submitblock`: a block built elsewhere.
    pub fn submit_block(
        &mut self,
        block: Block,
        max_tip_age: u64,
        log: &Logger,
    ) -> Result<(), NodeError> {
        let now = unix_now();
        let ibd = self.is_initial_block_download(now, max_tip_age, log);
        self.connect_and_store(block, Some(now as u32), ibd, log)?;
        self.store.sync()?;
        Ok(())
    }

    /// Core's `BroadcastTransaction` as `sendrawtransaction` uses it.
    pub fn send_transaction(
        &mut self,
        tx: Transaction,
        max_fee: Option<u64>,
        settings: &Settings,
    ) -> Result<Txid, SendError> {
        let txid = tx.compute_txid();
        if self.chain.has_unspent_output_of(&tx, txid) {
            return Err(SendError::AlreadyInUtxoSet);
        }
        if self.mempool.get(&txid).is_some() {
            // Already there: Core re-announces it and answers with the txid.
            return Ok(txid);
        }
        let now = unix_now();
        if let Some(max_fee) = max_fee {
            let tested = self
                .accept(tx.clone(), settings, now, true, true)
                .map_err(SendError::Rejected)?;
            if tested.fee > max_fee {
                return Err(SendError::MaxFeeExceeded);
            }
        }
        self.accept(tx, settings, now, false, true)
            .map_err(SendError::Rejected)?;
        Ok(txid)
    }

    /// Runs mempool acceptance.
    pub fn accept(
        &mut self,
        tx: Transaction,
        settings: &Settings,
        now: u64,
        test_only: bool,
        unbroadcast: bool,
    ) -> Result<Accepted, Reject> {
        let opts = AcceptOptions {
            policy: &settings.policy,
            now,
            test_only,
            unbroadcast,
        };
        self.mempool.accept(&self.chain, tx, &opts)
    }

    /// Writes the mempool to `path` (temporary file, fsync, rename). Returns how many
    /// transactions were written.
    pub fn save_mempool(&self, path: &Path) -> std::io::Result<usize> {
        let entries = self.mempool.entries_in_order();
        let list: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "hex": encode::serialize_hex(&e.tx),
                    "time": e.time,
                    "unbroadcast": e.unbroadcast,
                })
            })
            .collect();
        let text = serde_json::to_vec(&serde_json::json!({"version": 1, "transactions": list}))?;
        write_atomically(path, &text)?;
        Ok(entries.len())
    }

    /// Re-submits a saved mempool, keeping entry times; transactions that no longer fit
    /// are dropped. Returns (accepted, failed).
    pub fn load_mempool(&mut self, path: &Path, settings: &Settings) -> (usize, usize) {
        let mut accepted = 0;
        let mut failed = 0;
        if let Ok(bytes) = std::fs::read(path) {
            let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            for item in parsed["transactions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let tx = item["hex"]
                    .as_str()
                    .and_then(|h| encode::deserialize_hex::<Transaction>(h).ok());
                let Some(tx) = tx else {
                    failed += 1;
                    continue;
                };
                let time = item["time"].as_u64().unwrap_or_else(unix_now);
                let unbroadcast = item["unbroadcast"].as_bool().unwrap_or(true);
                match self.accept(tx, settings, time, false, unbroadcast) {
                    Ok(_) => accepted += 1,
                    Err(_) => failed += 1,
                }
            }
        }
        self.mempool_loaded = true;
        (accepted, failed)
    }

    /// Makes the block file durable (at shutdown).
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.store.sync()
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The node as the RPC server sees it.
pub struct Node {
    pub settings: Settings,
    pub log: Logger,
    state: OnceLock<Mutex<NodeState>>,
    /// `Some(message)` while RPC answers the -28 warm-up error.
    warmup: Mutex<Option<String>>,
    /// Unix time the process started (`uptime`).
    pub start_time: u64,
    shutdown: watch::Sender<bool>,
}

impl Node {
    pub fn new(settings: Settings, log: Logger) -> Node {
        Node {
            settings,
            log,
            state: OnceLock::new(),
            warmup: Mutex::new(Some("RPC server started".into())),
            start_time: unix_now(),
            shutdown: watch::channel(false).0,
        }
    }

    /// Installs the loaded state (once).
    pub fn set_state(&self, state: NodeState) {
        let _ = self.state.set(Mutex::new(state));
    }

    /// The node state; `None` until loading finished.
    pub fn state(&self) -> Option<MutexGuard<'_, NodeState>> {
        self.state
            .get()
            .map(|m| m.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The warm-up message while starting, `None` once RPC is fully up.
    pub fn warmup_status(&self) -> Option<String> {
        self.warmup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the warm-up message, logging it like Core's "init message: …".
    pub fn set_warmup_status(&self, message: &str) {
        self.log.log(format!("init message: {message}"));
        *self.warmup.lock().unwrap_or_else(|e| e.into_inner()) = Some(message.to_string());
    }

    pub fn finish_warmup(&self) {
        *self.warmup.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Asks the process to shut down (RPC `stop`, signals).
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// A receiver that turns true when shutdown was requested.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn shutdown_requested(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Core's tip age limit (`-maxtipage`).
    pub fn max_tip_age(&self) -> u64 {
        self.settings.max_tip_age
    }
}
