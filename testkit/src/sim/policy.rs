//! Context-free transaction rules: Bitcoin Core's `CheckTransaction` (consensus) and
//! `IsStandardTx` (relay policy), dust, fee arithmetic, and the reject reasons Core reports.
//!
//! Nothing here looks at scripts beyond classifying output types: signatures, script
//! execution, sigop counts and input standardness are not checked.

use super::chain::MAX_BLOCK_WEIGHT;
use super::script;
use super::settings::Policy;
use bitcoin::{Transaction, TxOut};
use std::collections::HashSet;

/// Core's `MAX_MONEY`.
pub const MAX_MONEY: u64 = 21_000_000 * 100_000_000;
/// Core's `MAX_STANDARD_TX_WEIGHT`.
pub const MAX_STANDARD_TX_WEIGHT: u64 = 400_000;
/// Core's `MIN_STANDARD_TX_NONWITNESS_SIZE`.
pub const MIN_STANDARD_TX_NONWITNESS_SIZE: usize = 65;
/// Core's `MAX_STANDARD_SCRIPTSIG_SIZE`.
const MAX_STANDARD_SCRIPTSIG_SIZE: usize = 1650;
/// Core's `MAX_DUST_OUTPUTS_PER_TX`.
const MAX_DUST_OUTPUTS_PER_TX: usize = 1;

/// Core's `TxValidationResult`, reduced to what decides the RPC error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectKind {
    /// Inputs missing or spent: `sendrawtransaction` answers -25.
    MissingInputs,
    /// Anything else: -26.
    Rejected,
}

/// A rejected transaction: Core's reject reason and debug message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub kind: RejectKind,
    pub reason: String,
    pub debug: String,
}

impl Reject {
    pub fn new(reason: impl Into<String>) -> Reject {
        Reject {
            kind: RejectKind::Rejected,
            reason: reason.into(),
            debug: String::new(),
        }
    }

    pub fn with_debug(reason: impl Into<String>, debug: impl Into<String>) -> Reject {
        Reject {
            kind: RejectKind::Rejected,
            reason: reason.into(),
            debug: debug.into(),
        }
    }

    /// Core's `ValidationState::ToString`: "reason" or "reason, debug".
    pub fn message(&self) -> String {
        if self.debug.is_empty() {
            self.reason.clone()
        } else {
            format!("{}, {}", self.reason, self.debug)
        }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// Virtual size as Core computes it without sigops: weight / 4 rounded up.
pub fn vsize(tx: &Transaction) -> u64 {
    tx.weight().to_wu().div_ceil(4)
}

/// Core's `CFeeRate::GetFee`: fee for `vsize` at `rate` sat/kvB, rounded up.
pub fn fee_at(rate_per_kvb: u64, vsize: u64) -> u64 {
    (rate_per_kvb * vsize).div_ceil(1000)
}

/// Core's `FormatMoney`: at least two decimals, trailing zeros trimmed ("0.0001", "1.00").
pub fn format_money(sats: i64) -> String {
    let negative = sats < 0;
    let abs = sats.unsigned_abs();
    let mut text = format!("{}.{:08}", abs / 100_000_000, abs % 100_000_000);
    while text.ends_with('0') && text.len() >= 3 && text.as_bytes()[text.len() - 3].is_ascii_digit()
    {
        text.pop();
    }
    if negative {
        format!("-{text}")
    } else {
        text
    }
}

/// Core's `GetDustThreshold`.
pub fn dust_threshold(output: &TxOut, dust_relay_feerate: u64) -> u64 {
    let spk = output.script_pubkey.as_bytes();
    if script::is_unspendable(spk) {
        return 0;
    }
    let mut size = bitcoin::consensus::encode::serialize(output).len() as u64;
    if script::witness_program(spk).is_some() {
        size += 32 + 4 + 1 + (107 / 4) + 4;
    } else {
        size += 32 + 4 + 1 + 107 + 4;
    }
    fee_at(dust_relay_feerate, size)
}

/// Number of outputs below their dust threshold.
pub fn dust_count(tx: &Transaction, dust_relay_feerate: u64) -> usize {
    tx.output
        .iter()
        .filter(|o| o.value.to_sat() < dust_threshold(o, dust_relay_feerate))
        .count()
}

/// Core's `CheckTransaction`: rules that need no context.
pub fn check_transaction(tx: &Transaction) -> Result<(), Reject> {
    if tx.input.is_empty() {
        return Err(Reject::new("bad-txns-vin-empty"));
    }
    if tx.output.is_empty() {
        return Err(Reject::new("bad-txns-vout-empty"));
    }
    if tx.base_size() as u64 * 4 > MAX_BLOCK_WEIGHT {
        return Err(Reject::new("bad-txns-oversize"));
    }
    let mut total: u64 = 0;
    for output in &tx.output {
        let value = output.value.to_sat();
        if value > i64::MAX as u64 {
            return Err(Reject::new("bad-txns-vout-negative"));
        }
        if value > MAX_MONEY {
            return Err(Reject::new("bad-txns-vout-toolarge"));
        }
        total += value;
        if total > MAX_MONEY {
            return Err(Reject::new("bad-txns-txouttotal-toolarge"));
        }
    }
    let mut seen = HashSet::with_capacity(tx.input.len());
    for input in &tx.input {
        if !seen.insert(input.previous_output) {
            return Err(Reject::new("bad-txns-inputs-duplicate"));
        }
    }
    if tx.is_coinbase() {
        let len = tx.input[0].script_sig.len();
        if !(2..=100).contains(&len) {
            return Err(Reject::new("bad-cb-length"));
        }
    } else if tx.input.iter().any(|i| i.previous_output.is_null()) {
        return Err(Reject::new("bad-txns-prevout-null"));
    }
    Ok(())
}

/// Core's `IsStandardTx` (only its script-free parts).
pub fn is_standard_tx(tx: &Transaction, policy: &Policy) -> Result<(), Reject> {
    let version = tx.version.0;
    if !(1..=3).contains(&version) {
        return Err(Reject::new("version"));
    }
    if tx.weight().to_wu() > MAX_STANDARD_TX_WEIGHT {
        return Err(Reject::new("tx-size"));
    }
    for input in &tx.input {
        if input.script_sig.len() > MAX_STANDARD_SCRIPTSIG_SIZE {
            return Err(Reject::new("scriptsig-size"));
        }
        if !script::is_push_only(input.script_sig.as_bytes()) {
            return Err(Reject::new("scriptsig-not-pushonly"));
        }
    }
    let mut datacarrier_left = policy.max_datacarrier_bytes.unwrap_or(0);
    for output in &tx.output {
        let spk = output.script_pubkey.as_bytes();
        if !script::is_standard_output(spk) {
            return Err(Reject::new("scriptpubkey"));
        }
        match script::classify(spk) {
            script::TxoutType::NullData => {
                let size = spk.len() as u64;
                if size > datacarrier_left {
                    return Err(Reject::new("datacarrier"));
                }
                datacarrier_left -= size;
            }
            script::TxoutType::Multisig { .. } if !policy.permit_bare_multisig => {
                return Err(Reject::new("bare-multisig"));
            }
            _ => {}
        }
    }
    if dust_count(tx, policy.dust_relay_feerate) > MAX_DUST_OUTPUTS_PER_TX {
        return Err(Reject::new("dust"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::{Amount, ScriptBuf};

    #[test]
    fn money_is_formatted_like_core() {
        assert_eq!(format_money(100_000_000), "1.00");
        assert_eq!(format_money(10_000), "0.0001");
        assert_eq!(format_money(156), "0.00000156");
        assert_eq!(format_money(5_000_000_000), "50.00");
        assert_eq!(format_money(-150_000_000), "-1.50");
        assert_eq!(format_money(0), "0.00");
    }

    #[test]
    fn dust_thresholds_match_core() {
        let out = |hex_spk: &str| TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(hex::decode(hex_spk).unwrap()),
        };
        assert_eq!(
            dust_threshold(&out("0014b8a9685444e57073800130141c6182856a43a363"), 3000),
            294
        );
        assert_eq!(
            dust_threshold(
                &out("76a914000102030405060708090a0b0c0d0e0f1011121388ac"),
                3000
            ),
            546
        );
        assert_eq!(
            dust_threshold(
                &out("00204a475eb36a083845ae7883a47b6ede9cfef8571188a9ed598061c8dea56cb750"),
                3000
            ),
            330
        );
        assert_eq!(dust_threshold(&out("6a0100"), 3000), 0);
    }

    #[test]
    fn fees_round_up() {
        assert_eq!(fee_at(100, 153), 16);
        assert_eq!(fee_at(1000, 153), 153);
        assert_eq!(fee_at(10_000_000, 153), 1_530_000);
    }
}
