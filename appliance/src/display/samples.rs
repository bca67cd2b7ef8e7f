//! Fixed statuses and one sample of every screen: the golden-image tests, the benchmark
//! and the screenshot gallery render these. Nothing here is a real secret (the seed words
//! are BIP39's published test vector, the pairing keys are made up).

use super::render::View;
use super::ui::{
    PairingCode, PairingQuestion, Question, Screen, SeedWords, UpdateQuestion, WithdrawalQuestion,
};
use crate::status::{
    BackupState, BackupStatus, Balances, BitcoindState, BitcoindStatus, ChainInfo, ChannelSummary,
    LightningState, LightningStatus, PairingStatus, Phase, PowerStatus, SetupStatus, Status,
    SystemStatus, UnixTime,
};

/// 2026-03-03 12:00:00 UTC.
pub const NOW: UnixTime = 1_772_539_200;

/// A made-up CA fingerprint (SHA-256, as the status carries it).
pub const CA_FINGERPRINT: &str = "3F:5A:9C:12:0B:D4:7E:61:A8:2C:F0:93:5D:E7:14:B6:\
                                  C9:08:6A:FF:31:4E:D2:87:1B:60:A5:3C:E9:72:0D:84";

fn channel(n: u8, capacity: u64, outbound: u64, usable: bool) -> ChannelSummary {
    ChannelSummary {
        user_channel_id: n.to_string(),
        channel_id: format!("{n:02x}").repeat(32),
        peer_id: format!("02{}", format!("{n:02x}").repeat(32)),
        capacity_sat: capacity,
        outbound_sat: outbound,
        inbound_sat: (capacity - outbound).saturating_sub(capacity / 100),
        usable,
        public: false,
        funding_txid: None,
        opened_by: None,
        state: if usable {
            "open".into()
        } else {
            "waiting for 3 confirmations".into()
        },
    }
}

/// A synced node with three channels and a mirrored backup.
pub fn running() -> Status {
    Status {
        phase: Phase::Running,
        bitcoind: BitcoindStatus {
            state: BitcoindState::Ready,
            chain: Some(ChainInfo {
                blocks: 871_234,
                headers: 871_234,
                best_block_hash: "00".repeat(32),
                verification_progress: 0.999_998,
                initial_block_download: false,
                pruned: true,
                connections: 10,
            }),
            network: "main".into(),
            restarts: 0,
            unclean_last_stop: false,
            last_checked: Some(NOW - 20),
        },
        lightning: LightningStatus {
            state: LightningState::Running,
            node_id: Some(format!("03{}", "ab".repeat(32))),
            listening_port: Some(9735),
            peers: 4,
            channels: vec![
                channel(1, 2_000_000, 1_234_567, true),
                channel(2, 500_000, 0, true),
                channel(3, 1_000_000, 1_000_000 - 9_770, false),
            ],
            balances: Balances {
                onchain_sat: 250_000,
                onchain_spendable_sat: 250_000,
                lightning_spendable_sat: 1_234_567,
                lightning_receivable_sat: 1_240_433,
                channel_reserve_sat: 35_000,
                pending_sat: 955_230,
            },
            recent_payments: Vec::new(),
            recovery_mode: false,
            force_closed_on_start: 0,
        },
        backup: BackupStatus {
            state: BackupState::Mirroring,
            mode: "keep-attached".into(),
            last_success: Some(NOW - 25 * 60),
            generation: Some(1042),
            stick_id: Some("SanDisk 4C53".into()),
        },
        system: SystemStatus {
            hostname: "plugnode".into(),
            ip_addresses: vec!["192.168.1.23".into(), "fe80::1".into()],
            web_url: Some("http://plugnode.local".into()),
            https_url: Some("https://plugnode.local/".into()),
            ca_fingerprint: Some(CA_FINGERPRINT.into()),
            data_disk_free_bytes: Some(400_000_000_000),
            data_disk_total_bytes: Some(1_000_000_000_000),
            power: PowerStatus::default(),
            display_error: None,
            ..SystemStatus::default()
        },
        setup: SetupStatus { password_set: true },
        pairing: PairingStatus::default(),
        update: Default::default(),
    }
}

/// The supervisor just started; bitcoind warms up.
pub fn booting() -> Status {
    let mut s = running();
    s.phase = Phase::Booting;
    s.bitcoind.state = BitcoindState::Starting {
        message: "Loading block index...".into(),
    };
    s.bitcoind.chain = None;
    s.lightning = LightningStatus::default();
    s.backup = BackupStatus::default();
    s
}

/// Initial block download at 45 %.
pub fn syncing() -> Status {
    let mut s = running();
    s.bitcoind.state = BitcoindState::Syncing;
    if let Some(chain) = s.bitcoind.chain.as_mut() {
        chain.blocks = 512_345;
        chain.headers = 871_234;
        chain.verification_progress = 0.4512;
        chain.initial_block_download = true;
        chain.connections = 8;
    }
    s.lightning = LightningStatus {
        state: LightningState::Waiting {
            reason: "bitcoind is still syncing".into(),
        },
        ..LightningStatus::default()
    };
    s.backup.state = BackupState::NoStick;
    s.backup.last_success = None;
    s.backup.generation = None;
    s.backup.stick_id = None;
    s
}

/// Undervoltage and a failed backup stick.
pub fn with_alerts() -> Status {
    let mut s = running();
    s.system.power = PowerStatus {
        undervoltage_now: true,
        undervoltage_since_boot: true,
        throttled_now: false,
    };
    s.backup.state = BackupState::Failed {
        message: "The stick stopped answering (I/O error).".into(),
    };
    s
}

/// bitcoind in a crash loop: one critical alert.
pub fn crash_loop() -> Status {
    let mut s = running();
    s.bitcoind.state = BitcoindState::CrashLoop {
        exits: 5,
        window_secs: 600,
        last_exit: "exit code 1".into(),
        last_lines: vec!["Error: Corrupted block database detected".into()],
    };
    s
}

pub fn backup_in(state: BackupState) -> Status {
    let mut s = running();
    s.backup.state = state;
    s
}

/// Everything stops.
pub fn shutting_down() -> Status {
    let mut s = running();
    s.phase = Phase::ShuttingDown;
    s.lightning.state = LightningState::Stopped;
    s.bitcoind.state = BitcoindState::Stopping;
    s
}

/// A made-up Nostr Wallet Connect URI of the usual length.
pub fn pairing() -> PairingCode {
    PairingCode::new(
        "Zeus (NWC)",
        format!(
            "nostr+walletconnect://{}?relay=wss%3A%2F%2Frelay.example.com&secret={}",
            "b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4",
            "71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c"
        ),
    )
}

/// What the pairing service asks before Zeus may spend.
pub fn pairing_question() -> PairingQuestion {
    PairingQuestion {
        app: "Zeus (NWC)".into(),
        permissions: "receive and spend".into(),
        budget: "50 000 sat per day, until 31 Dec".into(),
    }
}

/// A question with everything long: the name is shortened, the budget wraps.
pub fn long_pairing_question() -> PairingQuestion {
    PairingQuestion {
        app: "Amethyst on the family tablet in the kitchen (NWC)".into(),
        permissions: "receive, spend, and read the payment history".into(),
        budget: "1 000 000 sat per month, renewed on the 1st, until 31 Dec 2027".into(),
    }
}

/// What the web page's withdrawal asks on a box with keys (a mainnet-length address).
pub fn withdrawal_question() -> WithdrawalQuestion {
    WithdrawalQuestion {
        amount: "100 000 sat".into(),
        address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq".into(),
    }
}

/// What the web page's Install asks on a box with keys.
pub fn update_question() -> UpdateQuestion {
    UpdateQuestion {
        version: "0.4.0".into(),
        running: "0.3.2".into(),
    }
}

/// BIP39's published 24-word test vector (never use it for money).
pub fn seed() -> SeedWords {
    let words = "legal winner thank year wave sausage worth useful legal winner thank year \
                 wave sausage worth useful legal winner thank year wave sausage worth title";
    SeedWords::new(words.split_whitespace().map(String::from).collect()).expect("24 sample words")
}

/// One screen in one state.
pub struct Sample {
    pub name: &'static str,
    pub screen: Screen,
    pub status: Status,
    pub question: Option<Question>,
    pub unlock_code: Option<&'static str>,
    pub pairing: Option<PairingCode>,
    pub seed: Option<SeedWords>,
    pub redact: bool,
    pub setup_code: Option<&'static str>,
}

impl Sample {
    fn new(name: &'static str, screen: Screen, status: Status) -> Self {
        Sample {
            name,
            screen,
            status,
            question: None,
            unlock_code: None,
            pairing: None,
            seed: None,
            redact: false,
            setup_code: None,
        }
    }

    /// The view of this sample at [`NOW`] in UTC.
    pub fn view(&self, has_keys: bool) -> View<'_> {
        View {
            screen: self.screen,
            status: &self.status,
            question: self.question.as_ref(),
            unlock_code: self.unlock_code,
            pairing: self.pairing.as_ref(),
            seed: self.seed.as_ref(),
            has_keys,
            redact_secrets: self.redact,
            setup_code: self.setup_code,
            now: NOW,
            utc_offset_secs: 0,
        }
    }
}

/// Every screen, and the states of them a user must be able to read.
pub fn gallery() -> Vec<Sample> {
    let mut samples = vec![
        Sample::new("boot", Screen::Boot, booting()),
        Sample::new("home", Screen::Home, running()),
        Sample::new("home-syncing", Screen::Home, syncing()),
        Sample::new("home-alerts", Screen::Home, with_alerts()),
        Sample::new("home-paired", Screen::Home, {
            let mut s = running();
            s.pairing.active_connections = 2;
            s
        }),
        Sample::new("lightning", Screen::Lightning, running()),
        Sample::new("lightning-waiting", Screen::Lightning, syncing()),
        Sample::new("backup", Screen::Backup, running()),
        Sample::new(
            "backup-no-stick",
            Screen::Backup,
            backup_in(BackupState::NoStick),
        ),
        Sample::new(
            "backup-writing",
            Screen::Backup,
            backup_in(BackupState::Writing),
        ),
        Sample::new("backup-safe-to-remove", Screen::Backup, {
            let mut s = backup_in(BackupState::SafeToRemove);
            s.backup.mode = "snapshot".into();
            s
        }),
        Sample::new("backup-failed", Screen::Backup, with_alerts()),
        Sample::new(
            "backup-needs-confirmation",
            Screen::Backup,
            backup_in(BackupState::NeedsConfirmation {
                stick: "sda SanDisk (16 GB)".into(),
                reason: "This stick is empty. Prepare it for backups?".into(),
            }),
        ),
        Sample::new("this-box", Screen::ThisBox, running()),
        Sample::new("this-box-long-name", Screen::ThisBox, {
            let mut s = running();
            s.system.hostname = "bitcoin-node-in-the-attic".into();
            s.system.ip_addresses = vec!["192.168.178.123".into()];
            s
        }),
        Sample::new("this-box-starting", Screen::ThisBox, {
            let mut s = booting();
            s.system.ca_fingerprint = None;
            s.system.ip_addresses = Vec::new();
            s
        }),
        Sample::new(
            "alerts-crash-loop",
            Screen::Alerts { index: 0 },
            crash_loop(),
        ),
        Sample::new(
            "alerts-undervoltage",
            Screen::Alerts { index: 1 },
            with_alerts(),
        ),
        Sample::new("alerts-disk-full", Screen::Alerts { index: 0 }, {
            let mut s = running();
            s.system.data_disk_free_bytes = Some(900_000_000);
            s
        }),
        Sample::new("alerts-none", Screen::Alerts { index: 0 }, running()),
        Sample::new("shutdown-confirm", Screen::ShutdownConfirm, running()),
        Sample::new("shutting-down", Screen::ShuttingDown, shutting_down()),
        Sample::new("safe-to-unplug", Screen::SafeToUnplug, shutting_down()),
    ];
    let mut confirm = Sample::new("pairing-confirm", Screen::PairingConfirm, running());
    confirm.question = Some(pairing_question().into());
    let mut confirm_long = Sample::new("pairing-confirm-long", Screen::PairingConfirm, running());
    confirm_long.question = Some(long_pairing_question().into());
    let mut qr = Sample::new("pairing-qr", Screen::PairingQr, running());
    qr.pairing = Some(pairing());
    let mut lndhub_qr = Sample::new("pairing-qr-lndhub", Screen::PairingQr, running());
    lndhub_qr.pairing = Some(PairingCode::new(
        "BlueWallet (LNDHub)",
        "lndhub://80800ca12653b463bed1:ht91EB1vLU77VjlrwToe7zLE@http://192.168.1.23:3000",
    ));
    let mut seed1 = Sample::new("seed-1", Screen::Seed { page: 0 }, booting());
    seed1.seed = Some(seed());
    let mut seed4 = Sample::new("seed-4", Screen::Seed { page: 3 }, booting());
    seed4.seed = Some(seed());
    let mut mirror = Sample::new("mirror-redacted", Screen::Seed { page: 0 }, booting());
    mirror.seed = Some(seed());
    mirror.redact = true;
    let mut unclaimed = Sample::new("home-setup", Screen::Home, {
        let mut s = syncing();
        s.setup.password_set = false;
        s.lightning = LightningStatus::default();
        s.backup = BackupStatus::default();
        s
    });
    unclaimed.setup_code = Some("K7PX3MWD");
    let mut withdraw = Sample::new("withdrawal-confirm", Screen::WithdrawalConfirm, running());
    withdraw.question = Some(withdrawal_question().into());
    let mut update = Sample::new("update-confirm", Screen::UpdateConfirm, running());
    update.question = Some(update_question().into());
    let mut unlock = Sample::new("unlock-code", Screen::UnlockCode, running());
    unlock.unlock_code = Some("R4TN8WQE");
    samples.extend([
        confirm,
        confirm_long,
        qr,
        lndhub_qr,
        seed1,
        seed4,
        mirror,
        unclaimed,
        withdraw,
        update,
        unlock,
    ]);
    samples
}

/// A day in the life of a box, in tokio time (run it with the clock paused and it takes
/// no time): a health check every 30 s (invisible on screen), a block every 10 minutes,
/// three payments each followed by a backup write, a 5-minute undervoltage alert in the
/// afternoon, and someone walking through the screens in the evening.
pub async fn typical_day(status: &crate::status::StatusHandle, display: &super::DisplayHandle) {
    use std::time::Duration;
    const TICK: u64 = 30;
    let payments = [8 * 3600, 12 * 3600 + 1800, 19 * 3600];
    let alert = 14 * 3600..14 * 3600 + 300;
    let walk = 20 * 3600;
    let mut t = 0u64;
    while t < 24 * 3600 {
        status.update(|s| s.bitcoind.last_checked = Some(crate::status::unix_now()));
        if t % 600 == 0 && t > 0 {
            status.update(|s| {
                if let Some(chain) = s.bitcoind.chain.as_mut() {
                    chain.blocks += 1;
                    chain.headers += 1;
                }
            });
        }
        if payments.contains(&t) {
            status.update(|s| {
                s.lightning.balances.lightning_spendable_sat -= 21_000;
                s.backup.state = BackupState::Writing;
            });
        }
        if payments.contains(&(t.saturating_sub(TICK))) && t >= TICK {
            status.update(|s| {
                s.backup.state = BackupState::Mirroring;
                s.backup.last_success = Some(crate::status::unix_now());
                s.backup.generation = s.backup.generation.map(|g| g + 1);
            });
        }
        if t == alert.start || t == alert.end {
            let on = t == alert.start;
            status.update(|s| s.system.power.undervoltage_now = on);
        }
        if t == walk {
            // Once round the ring (Home, Lightning, Backup, This box, Alerts) and home.
            const PRESSES: u64 = 5;
            for _ in 0..PRESSES {
                let _ = display.press_key(plugnode_hw::Key::Key1).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            t += 5 * PRESSES;
            tokio::time::sleep(Duration::from_secs(TICK - 5 * PRESSES)).await;
            t += TICK - 5 * PRESSES;
            continue;
        }
        tokio::time::sleep(Duration::from_secs(TICK)).await;
        t += TICK;
    }
}
