//! The one `Status` model every view reads.
//!
//! Services own their part of the status and update it through a [`StatusHandle`]; the
//! e-ink display, the web page and the pairing services subscribe to the same
//! `tokio::sync::watch` channel, so they never disagree. Alerts are derived from the parts
//! ([`Status::alerts`]), never stored twice.

pub mod alerts;

pub use alerts::{human_bytes, Alert, AlertKind, Severity};

use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Seconds since the Unix epoch: what the web page and the screen print as times.
pub type UnixTime = u64;

/// Now, as [`UnixTime`].
pub fn unix_now() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Everything the box knows about itself, as the views show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Status {
    /// Where the supervisor is in its own life (booting, running, shutting down).
    pub phase: Phase,
    pub bitcoind: BitcoindStatus,
    pub lightning: LightningStatus,
    pub backup: BackupStatus,
    pub system: SystemStatus,
    pub setup: SetupStatus,
    pub pairing: PairingStatus,
    pub update: UpdateStatus,
}

/// System updates (signed A/B bundles): what runs, what is being installed or proven, and
/// how the last update ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateStatus {
    /// The system version running now (its release file; plugnode's own version without).
    pub running_version: String,
    /// The system slot the box booted from ("A" or "B"), on a box with updates.
    pub slot: Option<String>,
    pub state: UpdateState,
    /// How the last update ended, until the user dismisses it.
    pub last_result: Option<UpdateResult>,
    /// The user has seen `last_result` (it stays on the page, no longer as an alert).
    pub last_result_seen: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UpdateState {
    /// Updates are not available here (`reason` says why: no A/B slots, helper missing).
    #[default]
    Unavailable,
    Idle,
    /// A bundle arrives or is being checked.
    Checking,
    /// A checked bundle waits for "Install".
    Ready {
        bundle: BundleSummary,
    },
    /// Waiting for KEY2 on the box.
    WaitingForKey {
        version: String,
    },
    Installing {
        version: String,
        percent: u8,
        message: String,
    },
    /// Written: plugnode stops in order and the box restarts into `version`.
    Restarting {
        version: String,
    },
    /// This boot tries a new version once: it becomes the default only when it has
    /// proven itself (`waiting_for` lists what is not healthy yet).
    Proving {
        version: String,
        waiting_for: Vec<String>,
        deadline: UnixTime,
    },
    /// The new version did not prove itself: the box restarts into the previous one.
    GivingUp {
        version: String,
        reason: String,
    },
    /// The last install attempt failed before anything changed on the box.
    Failed {
        message: String,
    },
}

/// A checked bundle, as the page shows it before anything is written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BundleSummary {
    pub version: String,
    pub compatible: String,
    /// Who signed it (the certificate's subject), after the signature was verified.
    pub signer: String,
    pub notes: String,
    pub data_format: u32,
    /// Bytes of the bundle file.
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UpdateResult {
    /// The new version proved itself and is now the default.
    Updated {
        version: String,
        from: String,
        at: UnixTime,
    },
    /// The new version did not start: the box went back to `back_on` by itself.
    RolledBack {
        version: String,
        back_on: String,
        reason: String,
        at: UnixTime,
    },
}

/// Wallet apps paired with the box (Nostr Wallet Connect and LNDHub). Never carries a
/// pairing secret: only counts and the state of the relays.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PairingStatus {
    /// Connections that may be used now (confirmed, not revoked, not expired).
    pub active_connections: u32,
    /// The relays the Nostr Wallet Connect service listens on, and whether it reaches them.
    pub relays: Vec<RelayStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RelayStatus {
    /// `ws://…` or `wss://…`, as written in the pairing URI.
    pub url: String,
    /// The box's own relay on the home network (else a public relay from the config).
    pub embedded: bool,
    pub connected: bool,
}

/// What the first setup still needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SetupStatus {
    /// The web page has an admin password (the box is claimed).
    pub password_set: bool,
}

impl SetupStatus {
    /// Whether the user still has to open the web page to set the box up.
    pub fn needed(&self) -> bool {
        !self.password_set
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Booting,
    Running,
    /// The appliance could not start for a reason a restart will not fix: only the page
    /// and the screen run, saying what is wrong (`system.start_failure`).
    Diagnostic,
    ShuttingDown,
    /// Everything is stopped: the box can be unplugged.
    Stopped,
}

/// The bitcoind child process as the supervisor sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BitcoindStatus {
    pub state: BitcoindState,
    /// Chain facts from the last successful health check (kept while restarting, so the
    /// screens can still show the last known height).
    pub chain: Option<ChainInfo>,
    /// Network the node runs on ("main", "regtest", …), as bitcoind names it.
    pub network: String,
    /// Restarts after unexpected exits since plugnode started.
    pub restarts: u32,
    /// bitcoind's previous run ended without its clean shutdown (the power was cut, or it
    /// was killed): it fetches and checks its recent blocks again.
    pub unclean_last_stop: bool,
    /// When the last health check answered.
    pub last_checked: Option<UnixTime>,
}

/// The bitcoind state machine: NotStarted → Starting (warm-up) → Syncing → Ready, with
/// Restarting/CrashLoop on unexpected exits and Stopping → Stopped on shutdown.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BitcoindState {
    #[default]
    NotStarted,
    /// The process runs but RPC is not ready yet (bitcoind's -28 warm-up message, or
    /// "waiting for RPC" before the port opens).
    Starting {
        message: String,
    },
    /// RPC answers; blocks are still being downloaded or verified.
    Syncing,
    /// Synced to the best known header and out of initial block download.
    Ready,
    /// bitcoind exited unexpectedly; the supervisor starts it again after a pause.
    Restarting {
        last_exit: String,
        retry_in_secs: u64,
    },
    /// bitcoind keeps exiting: the supervisor stopped restarting it until the user retries.
    CrashLoop {
        exits: u32,
        window_secs: u64,
        last_exit: String,
        /// The last lines bitcoind printed before it exited.
        last_lines: Vec<String>,
    },
    /// Not started: the data disk has less free space than bitcoind needs.
    InsufficientDisk {
        needed_bytes: u64,
        free_bytes: u64,
        path: String,
    },
    /// bitcoind could not be started or reached at all (binary missing, RPC password
    /// rejected, …); `message` says what to do.
    Failed {
        message: String,
    },
    Stopping,
    Stopped,
}

/// Facts from `getblockchaininfo` and `getnetworkinfo`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChainInfo {
    pub blocks: u64,
    pub headers: u64,
    pub best_block_hash: String,
    /// 0.0 ..= 1.0
    pub verification_progress: f64,
    pub initial_block_download: bool,
    pub pruned: bool,
    pub connections: u32,
}

impl ChainInfo {
    /// Sync progress in percent, for progress bars (0..=100).
    pub fn progress_percent(&self) -> u8 {
        (self.verification_progress.clamp(0.0, 1.0) * 100.0).floor() as u8
    }
}

/// The embedded Lightning node.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LightningStatus {
    pub state: LightningState,
    pub node_id: Option<String>,
    pub listening_port: Option<u16>,
    pub peers: u32,
    pub channels: Vec<ChannelSummary>,
    pub balances: Balances,
    /// Newest first; a handful for the screens.
    pub recent_payments: Vec<PaymentSummary>,
    /// Restored from an older backup: the peers close the channels, no payments until then.
    pub recovery_mode: bool,
    /// Channels LDK had to close by force on start (the box lost power mid-update).
    pub force_closed_on_start: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LightningState {
    #[default]
    Disabled,
    /// Not started yet; `reason` says what it waits for (bitcoind RPC, initial sync, seed).
    Waiting {
        reason: String,
    },
    Starting,
    Running,
    Failed {
        message: String,
    },
    Stopping,
    Stopped,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Balances {
    pub onchain_sat: u64,
    pub onchain_spendable_sat: u64,
    /// What we can send over our channels right now.
    pub lightning_spendable_sat: u64,
    /// What our usable channels can receive right now (their inbound capacity).
    pub lightning_receivable_sat: u64,
    /// Kept back so channels can always be closed safely: the part of our channel balance
    /// each channel must keep (about 1 %), and the on-chain amount kept per channel for
    /// the fees of closing it. It comes back when the channels close.
    pub channel_reserve_sat: u64,
    /// Our side of channels that are not usable yet or closing, closed-channel outputs not
    /// swept yet, and on-chain funds not confirmed yet.
    pub pending_sat: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelSummary {
    /// Our id for the channel (what closing it takes).
    pub user_channel_id: String,
    /// The channel id both peers know.
    pub channel_id: String,
    pub peer_id: String,
    pub capacity_sat: u64,
    pub outbound_sat: u64,
    pub inbound_sat: u64,
    pub usable: bool,
    pub public: bool,
    pub funding_txid: Option<String>,
    /// Human words: "open", "waiting for 3 confirmations", "closing".
    pub state: String,
    /// The liquidity provider that opened it for a payment (a just-in-time channel).
    pub opened_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaymentSummary {
    pub id: String,
    /// "bolt11", "bolt12" or "keysend".
    pub kind: String,
    pub payment_hash: Option<String>,
    pub inbound: bool,
    pub amount_msat: Option<u64>,
    pub fee_msat: Option<u64>,
    /// Received through a just-in-time channel: what the liquidity provider kept.
    pub lsp_fee_msat: Option<u64>,
    /// "pending", "succeeded" or "failed".
    pub status: String,
    pub updated_at: UnixTime,
}

/// The USB backup stick.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BackupStatus {
    pub state: BackupState,
    /// "keep-attached" or "snapshot".
    pub mode: String,
    pub last_success: Option<UnixTime>,
    pub generation: Option<u64>,
    /// A short id of the stick that holds the newest backup (label or serial).
    pub stick_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BackupState {
    /// Backups are not set up (no seed yet, or backup disabled).
    #[default]
    Disabled,
    /// No stick is attached: only the SD card holds the channel state.
    NoStick,
    /// A stick was found that needs the user's confirmation before plugnode prepares it.
    NeedsConfirmation { stick: String, reason: String },
    /// Writing a backup right now.
    Writing,
    /// The stick mirrors every channel update (keep-attached mode).
    Mirroring,
    /// A snapshot was written and verified and the stick is unmounted.
    SafeToRemove,
    /// The stick failed; channel state is on the SD card only until a good stick returns.
    Failed { message: String },
}

/// The box itself: network addresses, disk, power.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SystemStatus {
    pub hostname: String,
    pub ip_addresses: Vec<String>,
    /// Where the web page answers, as a user types it.
    pub web_url: Option<String>,
    /// The page over HTTPS, as a user types it.
    pub https_url: Option<String>,
    /// SHA-256 fingerprint of the box's own certificate authority, colon-separated hex as
    /// browsers show it: the user compares it with the box's screen before trusting it.
    pub ca_fingerprint: Option<String>,
    pub data_disk_free_bytes: Option<u64>,
    pub data_disk_total_bytes: Option<u64>,
    pub power: PowerStatus,
    /// Why the e-ink display is not working, when it is not.
    pub display_error: Option<String>,
    /// Why the appliance could not start (diagnostic mode).
    pub start_failure: Option<StartFailure>,
    /// plugnode's own services that ended while the box ran (a bug): the box stops in order.
    pub stopped_services: Vec<String>,
}

/// What stopped the appliance from starting, as the page and the screen say it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StartFailure {
    /// What is wrong, in a few words ("The data disk is full").
    pub problem: String,
    /// The whole cause, with what to do.
    pub detail: String,
}

/// The Raspberry Pi's power flags (`get_throttled`), when the firmware exposes them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PowerStatus {
    pub undervoltage_now: bool,
    pub undervoltage_since_boot: bool,
    pub throttled_now: bool,
}

/// The publishing side of the status channel. Cheap to clone; each service keeps one.
#[derive(Clone)]
pub struct StatusHandle {
    sender: watch::Sender<Status>,
}

impl StatusHandle {
    pub fn new() -> Self {
        Self::with_initial(Status::default())
    }

    pub fn with_initial(status: Status) -> Self {
        let (sender, _) = watch::channel(status);
        StatusHandle { sender }
    }

    /// Changes the status; subscribers are woken only when something actually changed.
    pub fn update(&self, change: impl FnOnce(&mut Status)) {
        self.sender.send_if_modified(|status| {
            let before = status.clone();
            change(status);
            *status != before
        });
    }

    /// A copy of the current status.
    pub fn snapshot(&self) -> Status {
        self.sender.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.sender.subscribe()
    }
}

impl Default for StatusHandle {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_wake_only_on_real_changes() {
        let handle = StatusHandle::new();
        let mut rx = handle.subscribe();
        rx.mark_unchanged();

        handle.update(|s| s.bitcoind.restarts = 0);
        assert!(!rx.has_changed().unwrap(), "no change must not wake views");

        handle.update(|s| s.bitcoind.restarts = 1);
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().bitcoind.restarts, 1);
    }

    #[test]
    fn progress_is_clamped_and_floored() {
        let mut info = ChainInfo {
            verification_progress: 0.9999,
            ..ChainInfo::default()
        };
        assert_eq!(info.progress_percent(), 99);
        info.verification_progress = 1.2;
        assert_eq!(info.progress_percent(), 100);
    }
}
