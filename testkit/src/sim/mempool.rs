//! The mempool and its acceptance rules, after Bitcoin Core's `MemPoolAccept::PreChecks`
//! and `ReplacementChecks`: missing inputs, double spends, coinbase maturity, lock times
//! (`nLockTime` and BIP68), fee floors, dust, and full-RBF replacement.
//!
//! **No script or signature is checked**: a transaction spending a coin it cannot sign for
//! is accepted. Unconfirmed chains (spending mempool outputs) are allowed.

use super::chain::{self, is_final_tx, Chain, COINBASE_MATURITY};
use super::policy::{self, format_money, Reject, RejectKind};
use super::settings::Policy;
use bitcoin::{Block, OutPoint, Transaction, TxOut, Txid, Wtxid};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Core's `MAX_REPLACEMENT_CANDIDATES`.
const MAX_REPLACEMENT_CANDIDATES: usize = 100;
/// Core's `DEFAULT_CLUSTER_LIMIT`.
pub const CLUSTER_COUNT_LIMIT: usize = 64;
/// Core's `DEFAULT_CLUSTER_SIZE_LIMIT_KVB` in vbytes.
pub const CLUSTER_SIZE_LIMIT: u64 = 101_000;

/// One mempool transaction.
#[derive(Clone, Debug)]
pub struct Entry {
    pub tx: Transaction,
    pub txid: Txid,
    pub wtxid: Wtxid,
    /// Fee in satoshis.
    pub fee: u64,
    pub vsize: u64,
    pub weight: u64,
    /// Unix time it entered the mempool.
    pub time: u64,
    /// Chain height when it entered.
    pub height: u32,
    /// Entry order (parents always come before their children).
    pub order: u64,
    /// Submitted over RPC and not yet announced to a peer (always, the sim has no peers).
    pub unbroadcast: bool,
}

/// A transaction the mempool took.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub fee: u64,
    pub vsize: u64,
}

/// How to treat a transaction being submitted.
pub struct AcceptOptions<'a> {
    pub policy: &'a Policy,
    pub now: u64,
    /// Only check (Core's `test_accept`).
    pub test_only: bool,
    pub unbroadcast: bool,
}

/// Unconfirmed transactions, indexed by txid, wtxid and spent outpoint.
#[derive(Default)]
pub struct Mempool {
    entries: HashMap<Txid, Entry>,
    by_wtxid: HashMap<Wtxid, Txid>,
    spenders: HashMap<OutPoint, Txid>,
    next_order: u64,
    /// Core's mempool sequence number: bumped on every addition and removal.
    pub sequence: u64,
}

/// A coin seen by a transaction being checked: from the chain or from a mempool parent.
struct ViewCoin {
    output: TxOut,
    /// `None` for mempool outputs.
    height: Option<u32>,
    coinbase: bool,
}

/// Fee and weight of a set of transactions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeeWeight {
    pub fee: u64,
    pub weight: u64,
}

impl FeeWeight {
    /// Whether `self` pays a strictly higher feerate than `other`.
    fn beats(&self, other: &FeeWeight) -> bool {
        u128::from(self.fee) * u128::from(other.weight.max(1))
            > u128::from(other.fee) * u128::from(self.weight.max(1))
    }
}

impl Mempool {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, txid: &Txid) -> Option<&Entry> {
        self.entries.get(txid)
    }

    /// Entries in entry order (a valid mining order: parents first).
    pub fn entries_in_order(&self) -> Vec<&Entry> {
        let mut list: Vec<&Entry> = self.entries.values().collect();
        list.sort_by_key(|e| e.order);
        list
    }

    /// An output created by a mempool transaction.
    pub fn output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.entries
            .get(&outpoint.txid)
            .and_then(|e| e.tx.output.get(outpoint.vout as usize))
    }

    /// The mempool transaction spending `outpoint`.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spenders.get(outpoint).copied()
    }

    /// In-mempool parents of `tx`.
    fn parents_of(&self, tx: &Transaction) -> BTreeSet<Txid> {
        tx.input
            .iter()
            .map(|i| i.previous_output.txid)
            .filter(|t| self.entries.contains_key(t))
            .collect()
    }

    pub fn parents(&self, txid: &Txid) -> BTreeSet<Txid> {
        self.entries
            .get(txid)
            .map(|e| self.parents_of(&e.tx))
            .unwrap_or_default()
    }

    pub fn children(&self, txid: &Txid) -> BTreeSet<Txid> {
        let Some(entry) = self.entries.get(txid) else {
            return BTreeSet::new();
        };
        (0..entry.tx.output.len() as u32)
            .filter_map(|vout| self.spenders.get(&OutPoint { txid: *txid, vout }).copied())
            .collect()
    }

    fn closure(
        &self,
        start: impl IntoIterator<Item = Txid>,
        step: impl Fn(&Txid) -> BTreeSet<Txid>,
    ) -> HashSet<Txid> {
        let mut seen = HashSet::new();
        let mut todo: Vec<Txid> = start.into_iter().collect();
        while let Some(txid) = todo.pop() {
            if seen.insert(txid) {
                todo.extend(step(&txid));
            }
        }
        seen
    }

    /// In-mempool ancestors, `txid` excluded.
    pub fn ancestors(&self, txid: &Txid) -> HashSet<Txid> {
        let mut set = self.closure(self.parents(txid), |t| self.parents(t));
        set.remove(txid);
        set
    }

    /// In-mempool descendants, `txid` excluded.
    pub fn descendants(&self, txid: &Txid) -> HashSet<Txid> {
        let mut set = self.closure(self.children(txid), |t| self.children(t));
        set.remove(txid);
        set
    }

    /// The connected component of `txid` (itself included).
    pub fn cluster(&self, txid: &Txid) -> HashSet<Txid> {
        self.closure([*txid], |t| {
            let mut next = self.parents(t);
            next.extend(self.children(t));
            next
        })
    }

    /// Sum of fees and weights of `set`.
    pub fn fee_weight<'a>(&self, set: impl IntoIterator<Item = &'a Txid>) -> FeeWeight {
        set.into_iter()
            .filter_map(|t| self.entries.get(t))
            .fold(FeeWeight::default(), |acc, e| FeeWeight {
                fee: acc.fee + e.fee,
                weight: acc.weight + e.weight,
            })
    }

    /// Sum of vsizes of `set`.
    pub fn vsize_of<'a>(&self, set: impl IntoIterator<Item = &'a Txid>) -> u64 {
        set.into_iter()
            .filter_map(|t| self.entries.get(t))
            .map(|e| e.vsize)
            .sum()
    }

    /// The cluster-mempool "chunk" of `txid`: the cluster is linearized by repeatedly taking
    /// the best-feerate ancestor set (Core's older mining order; clusters here are tiny),
    /// then cut into chunks of non-increasing feerate. Close to Core's result, not exact.
    pub fn chunk(&self, txid: &Txid) -> FeeWeight {
        let mut remaining: BTreeSet<Txid> = self.cluster(txid).into_iter().collect();
        let mut order: Vec<Txid> = Vec::with_capacity(remaining.len());
        while !remaining.is_empty() {
            let mut best: Option<(FeeWeight, Vec<Txid>)> = None;
            for candidate in &remaining {
                let mut set: Vec<Txid> = self
                    .ancestors(candidate)
                    .into_iter()
                    .filter(|a| remaining.contains(a))
                    .collect();
                set.push(*candidate);
                let fw = self.fee_weight(&set);
                if best.as_ref().is_none_or(|(b, _)| fw.beats(b)) {
                    best = Some((fw, set));
                }
            }
            let (_, mut set) = best.expect("remaining is not empty");
            set.sort_by_key(|t| self.entries.get(t).map_or(0, |e| e.order));
            for t in set {
                remaining.remove(&t);
                order.push(t);
            }
        }
        let mut chunks: Vec<(FeeWeight, Vec<Txid>)> = Vec::new();
        for t in order {
            chunks.push((self.fee_weight([&t]), vec![t]));
            while chunks.len() >= 2
                && chunks[chunks.len() - 1]
                    .0
                    .beats(&chunks[chunks.len() - 2].0)
            {
                let (fw, txs) = chunks.pop().expect("two chunks");
                let last = chunks.last_mut().expect("one chunk");
                last.0.fee += fw.fee;
                last.0.weight += fw.weight;
                last.1.extend(txs);
            }
        }
        chunks
            .into_iter()
            .find(|(_, txs)| txs.contains(txid))
            .map_or_else(|| self.fee_weight([txid]), |(fw, _)| fw)
    }

    /// BIP125 signalling of the transaction or one of its mempool ancestors (Core's
    /// `IsRBFOptIn`).
    pub fn signals_rbf(&self, txid: &Txid) -> bool {
        let signals = |t: &Txid| {
            self.entries
                .get(t)
                .is_some_and(|e| e.tx.input.iter().any(|i| i.sequence.0 <= 0xffff_fffd))
        };
        signals(txid) || self.ancestors(txid).iter().any(signals)
    }

    pub fn total_fee(&self) -> u64 {
        self.entries.values().map(|e| e.fee).sum()
    }

    pub fn total_vsize(&self) -> u64 {
        self.entries.values().map(|e| e.vsize).sum()
    }

    /// A rough stand-in for Core's `DynamicMemoryUsage` (64 bytes when empty, like Core).
    pub fn usage(&self) -> u64 {
        64 + self
            .entries
            .values()
            .map(|e| e.tx.total_size() as u64 * 2 + 512)
            .sum::<u64>()
    }

    pub fn unbroadcast_count(&self) -> usize {
        self.entries.values().filter(|e| e.unbroadcast).count()
    }

    fn insert(&mut self, entry: Entry) {
        for input in &entry.tx.input {
            self.spenders.insert(input.previous_output, entry.txid);
        }
        self.by_wtxid.insert(entry.wtxid, entry.txid);
        self.entries.insert(entry.txid, entry);
        self.sequence += 1;
    }

    fn remove(&mut self, txid: &Txid) -> Option<Entry> {
        let entry = self.entries.remove(txid)?;
        for input in &entry.tx.input {
            if self.spenders.get(&input.previous_output) == Some(txid) {
                self.spenders.remove(&input.previous_output);
            }
        }
        self.by_wtxid.remove(&entry.wtxid);
        self.sequence += 1;
        Some(entry)
    }

    /// Removes `txid` and everything spending it.
    pub fn remove_with_descendants(&mut self, txid: &Txid) -> Vec<Txid> {
        let mut set = self.descendants(txid);
        set.insert(*txid);
        let mut removed: Vec<Txid> = set
            .into_iter()
            .filter(|t| self.remove(t).is_some())
            .collect();
        removed.sort();
        removed
    }

    /// Drops what `block` confirmed and what now conflicts with it. Returns (confirmed,
    /// conflicting) txids.
    pub fn remove_for_block(&mut self, block: &Block) -> (Vec<Txid>, Vec<Txid>) {
        let mut confirmed = Vec::new();
        let mut conflicts = Vec::new();
        for tx in block.txdata.iter().skip(1) {
            let txid = tx.compute_txid();
            if self.remove(&txid).is_some() {
                confirmed.push(txid);
            }
        }
        for tx in block.txdata.iter().skip(1) {
            for input in &tx.input {
                if let Some(spender) = self.spender(&input.previous_output) {
                    conflicts.extend(self.remove_with_descendants(&spender));
                }
            }
        }
        (confirmed, conflicts)
    }

    /// Core's `AcceptToMemoryPool` for a single transaction (without script checks).
    pub fn accept(
        &mut self,
        chain: &Chain,
        tx: Transaction,
        opts: &AcceptOptions,
    ) -> Result<Accepted, Reject> {
        let policy = opts.policy;
        let txid = tx.compute_txid();
        let wtxid = tx.compute_wtxid();
        let tip = chain.tip();
        let next_height = tip.height + 1;
        let tip_mtp = tip.median_time;

        policy::check_transaction(&tx)?;
        if tx.is_coinbase() {
            return Err(Reject::new("coinbase"));
        }
        if policy.require_standard {
            policy::is_standard_tx(&tx, policy)?;
        }
        if tx.base_size() < policy::MIN_STANDARD_TX_NONWITNESS_SIZE {
            return Err(Reject::new("tx-size-small"));
        }
        if !is_final_tx(&tx, next_height, tip_mtp) {
            return Err(Reject::new("non-final"));
        }
        if self.by_wtxid.contains_key(&wtxid) {
            return Err(Reject::new("txn-already-in-mempool"));
        }
        if self.entries.contains_key(&txid) {
            return Err(Reject::new("txn-same-nonwitness-data-in-mempool"));
        }

        let direct_conflicts: BTreeSet<Txid> = tx
            .input
            .iter()
            .filter_map(|i| self.spender(&i.previous_output))
            .collect();

        let mut coins = Vec::with_capacity(tx.input.len());
        for input in &tx.input {
            let outpoint = &input.previous_output;
            let coin = if let Some(coin) = chain.coin(outpoint) {
                ViewCoin {
                    output: coin.output.clone(),
                    height: Some(coin.height),
                    coinbase: coin.coinbase,
                }
            } else if let Some(output) = self.output(outpoint) {
                ViewCoin {
                    output: output.clone(),
                    height: None,
                    coinbase: false,
                }
            } else {
                if chain.has_unspent_output_of(&tx, txid) {
                    return Err(Reject::new("txn-already-known"));
                }
                return Err(Reject {
                    kind: RejectKind::MissingInputs,
                    reason: "bad-txns-inputs-missingorspent".into(),
                    debug: String::new(),
                });
            };
            coins.push(coin);
        }

        if !sequence_locks_ok(chain, &tx, &coins) {
            return Err(Reject::new("non-BIP68-final"));
        }

        // Core's Consensus::CheckTxInputs at the next block's height.
        let mut value_in: u64 = 0;
        for coin in &coins {
            if coin.coinbase {
                let depth = next_height - coin.height.unwrap_or(next_height);
                if depth < COINBASE_MATURITY {
                    return Err(Reject::with_debug(
                        "bad-txns-premature-spend-of-coinbase",
                        format!("tried to spend coinbase at depth {depth}"),
                    ));
                }
            }
            value_in += coin.output.value.to_sat();
            if value_in > policy::MAX_MONEY {
                return Err(Reject::new("bad-txns-inputvalues-outofrange"));
            }
        }
        let value_out: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
        if value_in < value_out {
            return Err(Reject::with_debug(
                "bad-txns-in-belowout",
                format!(
                    "value in ({}) < value out ({})",
                    format_money(value_in as i64),
                    format_money(value_out as i64)
                ),
            ));
        }
        let fee = value_in - value_out;
        let vsize = policy::vsize(&tx);
        let weight = tx.weight().to_wu();

        if policy.require_standard
            && fee != 0
            && policy::dust_count(&tx, policy.dust_relay_feerate) > 0
        {
            return Err(Reject::with_debug(
                "dust",
                "tx with dust output must be 0-fee",
            ));
        }
        let min_fee = policy::fee_at(policy.min_relay_feerate, vsize);
        if fee < min_fee {
            return Err(Reject::with_debug(
                "min relay fee not met",
                format!("{fee} < {min_fee}"),
            ));
        }

        // Parents in the mempool (ancestors of the new transaction).
        let parents: BTreeSet<Txid> = self.parents_of(&tx);
        let ancestors: HashSet<Txid> = self.closure(parents.iter().copied(), |t| self.parents(t));

        // Replacement (full RBF: signalling is not required).
        let mut all_conflicts: HashSet<Txid> = HashSet::new();
        if !direct_conflicts.is_empty() {
            let clusters: HashSet<BTreeSet<Txid>> = direct_conflicts
                .iter()
                .map(|t| self.cluster(t).into_iter().collect())
                .collect();
            if clusters.len() > MAX_REPLACEMENT_CANDIDATES {
                return Err(Reject::with_debug(
                    "too many potential replacements",
                    format!(
                        "rejecting replacement {txid}; too many conflicting clusters ({} > {MAX_REPLACEMENT_CANDIDATES})",
                        clusters.len()
                    ),
                ));
            }
            if let Some(conflicting) = direct_conflicts.iter().find(|c| ancestors.contains(*c)) {
                return Err(Reject::with_debug(
                    "bad-txns-spends-conflicting-tx",
                    format!("{txid} spends conflicting transaction {conflicting}"),
                ));
            }
            for conflict in &direct_conflicts {
                all_conflicts.insert(*conflict);
                all_conflicts.extend(self.descendants(conflict));
            }
            let old_fees: u64 = all_conflicts
                .iter()
                .filter_map(|t| self.entries.get(t))
                .map(|e| e.fee)
                .sum();
            if fee < old_fees {
                return Err(Reject::with_debug(
                    "insufficient fee",
                    format!(
                        "rejecting replacement {txid}, less fees than conflicting txs; {} < {}",
                        format_money(fee as i64),
                        format_money(old_fees as i64)
                    ),
                ));
            }
            let additional = fee - old_fees;
            let relay = policy::fee_at(policy.incremental_relay_feerate, vsize);
            if additional < relay {
                return Err(Reject::with_debug(
                    "insufficient fee",
                    format!(
                        "rejecting replacement {txid}, not enough additional fees to relay; {} < {}",
                        format_money(additional as i64),
                        format_money(relay as i64)
                    ),
                ));
            }
            // Stand-in for Core's feerate-diagram check: the replacement (with its
            // ancestors) must pay a higher feerate than each chunk it evicts.
            let ancestors_fw = self.fee_weight(&ancestors);
            let new_fw = FeeWeight {
                fee: fee + ancestors_fw.fee,
                weight: weight + ancestors_fw.weight,
            };
            for conflict in &direct_conflicts {
                if !new_fw.beats(&self.chunk(conflict)) {
                    return Err(Reject::with_debug(
                        "replacement-failed",
                        "insufficient feerate: does not improve feerate diagram",
                    ));
                }
            }
        }

        // Cluster limits, counting what the replacement evicts as gone.
        let mut cluster: HashSet<Txid> = HashSet::new();
        for parent in &parents {
            cluster.extend(self.cluster(parent));
        }
        cluster.retain(|t| !all_conflicts.contains(t));
        if cluster.len() + 1 > CLUSTER_COUNT_LIMIT
            || self.vsize_of(&cluster) + vsize > CLUSTER_SIZE_LIMIT
        {
            return Err(Reject::new("too-large-cluster"));
        }

        if opts.test_only {
            return Ok(Accepted { fee, vsize });
        }

        let mut replaced: Vec<Txid> = all_conflicts.into_iter().collect();
        replaced.sort();
        for t in &replaced {
            self.remove(t);
        }
        let order = self.next_order;
        self.next_order += 1;
        self.insert(Entry {
            tx,
            txid,
            wtxid,
            fee,
            vsize,
            weight,
            time: opts.now,
            height: tip.height,
            order,
            unbroadcast: opts.unbroadcast,
        });
        Ok(Accepted { fee, vsize })
    }
}

/// BIP68 relative lock times for inclusion in the next block (mempool parents count as
/// confirmed in the next block, like Core's `CalculateLockPointsAtTip`).
fn sequence_locks_ok(chain: &Chain, tx: &Transaction, coins: &[ViewCoin]) -> bool {
    let next_height = chain.height() + 1;
    let heights: Vec<u32> = coins
        .iter()
        .map(|c| c.height.unwrap_or(next_height))
        .collect();
    chain::sequence_locks_ok(tx, &heights, next_height, chain.tip().median_time, |h| {
        chain.median_time_past(h)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::chain::Chain;
    use bitcoin::{absolute, transaction, Amount, ScriptBuf, Sequence, TxIn, Witness};

    fn spk(tag: u8) -> ScriptBuf {
        let mut bytes = vec![0x00, 0x14];
        bytes.extend([tag; 20]);
        ScriptBuf::from_bytes(bytes)
    }

    /// A chain with `n` blocks paying 50 BTC coinbases to `spk(0)`.
    fn chain(n: u32) -> Chain {
        let mut chain = Chain::new(false);
        for i in 0..n {
            let block = chain.assemble_block(&spk(0), Vec::new(), 0, 2_000_000_000 + i);
            chain.connect(block, None).unwrap();
        }
        chain
    }

    fn coinbase(chain: &Chain, height: u32) -> OutPoint {
        OutPoint {
            txid: chain.at(height).unwrap().block.txdata[0].compute_txid(),
            vout: 0,
        }
    }

    fn tx(inputs: &[(OutPoint, u64)], fee: u64, tag: u8) -> Transaction {
        let value: u64 = inputs.iter().map(|(_, v)| v).sum::<u64>() - fee;
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: inputs
                .iter()
                .map(|(o, _)| TxIn {
                    previous_output: *o,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::from_slice(&[[0x51u8]]),
                })
                .collect(),
            output: vec![TxOut {
                value: Amount::from_sat(value),
                script_pubkey: spk(tag),
            }],
        }
    }

    fn accept(pool: &mut Mempool, chain: &Chain, tx: &Transaction) -> Result<Accepted, Reject> {
        let policy = Policy::default();
        let opts = AcceptOptions {
            policy: &policy,
            now: 1,
            test_only: false,
            unbroadcast: true,
        };
        pool.accept(chain, tx.clone(), &opts)
    }

    #[test]
    fn chains_of_unconfirmed_transactions_track_ancestors_descendants_and_chunks() {
        let chain = chain(101);
        let mut pool = Mempool::default();
        let parent = tx(&[(coinbase(&chain, 1), 5_000_000_000)], 200, 1);
        let parent_out = OutPoint {
            txid: parent.compute_txid(),
            vout: 0,
        };
        let child = tx(&[(parent_out, 5_000_000_000 - 200)], 50_000, 2);
        accept(&mut pool, &chain, &parent).unwrap();
        accept(&mut pool, &chain, &child).unwrap();
        let (p, c) = (parent.compute_txid(), child.compute_txid());
        assert_eq!(pool.ancestors(&c), HashSet::from([p]));
        assert_eq!(pool.descendants(&p), HashSet::from([c]));
        assert_eq!(pool.cluster(&p).len(), 2);
        // The child pays for its parent: both share the chunk of the pair.
        assert_eq!(pool.chunk(&p).fee, 50_200);
        assert_eq!(pool.chunk(&c), pool.chunk(&p));
        assert!(pool.signals_rbf(&c));
        // A parent paying more than its child is a chunk of its own.
        let rich = tx(&[(coinbase(&chain, 2), 5_000_000_000)], 90_000, 3);
        let rich_out = OutPoint {
            txid: rich.compute_txid(),
            vout: 0,
        };
        let poor = tx(&[(rich_out, 5_000_000_000 - 90_000)], 100, 4);
        accept(&mut pool, &chain, &rich).unwrap();
        accept(&mut pool, &chain, &poor).unwrap();
        assert_eq!(pool.chunk(&rich.compute_txid()).fee, 90_000);
        assert_eq!(pool.chunk(&poor.compute_txid()).fee, 100);
        let order: Vec<Txid> = pool.entries_in_order().iter().map(|e| e.txid).collect();
        assert_eq!(order[..2], [p, c]);
    }

    #[test]
    fn a_replacement_must_pay_more_and_for_its_own_relay() {
        let chain = chain(101);
        let mut pool = Mempool::default();
        let coin = (coinbase(&chain, 1), 5_000_000_000);
        accept(&mut pool, &chain, &tx(&[coin], 1_000, 1)).unwrap();
        let same_fee = tx(&[coin], 1_000, 2);
        let err = accept(&mut pool, &chain, &same_fee).unwrap_err();
        assert_eq!(err.reason, "insufficient fee");
        assert!(
            err.debug
                .contains("not enough additional fees to relay; 0.00 < 0.00000009"),
            "{}",
            err.debug
        );
        let better = tx(&[coin], 2_000, 3);
        let accepted = accept(&mut pool, &chain, &better).unwrap();
        assert_eq!(accepted.fee, 2_000);
        assert_eq!(pool.len(), 1);
        assert!(pool.get(&better.compute_txid()).is_some());
    }

    #[test]
    fn a_block_clears_what_it_confirmed_and_what_conflicts_with_it() {
        let mut chain = chain(101);
        let mut pool = Mempool::default();
        let coin = (coinbase(&chain, 1), 5_000_000_000);
        let in_pool = tx(&[coin], 1_000, 1);
        accept(&mut pool, &chain, &in_pool).unwrap();
        let mined = tx(&[coin], 3_000, 2);
        let block = chain.assemble_block(&spk(0), vec![mined.clone()], 3_000, 2_100_000_000);
        chain.connect(block, None).unwrap();
        let (confirmed, conflicts) = pool.remove_for_block(&chain.tip().block);
        assert!(confirmed.is_empty());
        assert_eq!(conflicts, vec![in_pool.compute_txid()]);
        assert_eq!(pool.len(), 0);
    }
}
