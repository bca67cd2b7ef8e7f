//! bitcoind's command line and `bitcoin.conf` rules, as Bitcoin Core's `common/args.cpp`,
//! `common/config.cpp` and `common/settings.cpp` implement them.
//!
//! plugnode writes a `bitcoin.conf` for the real Bitcoin Core; the sim must read it the same
//! way, including the surprising parts: network-only options (`rpcport`, `port`, `rpcbind`,
//! …) written outside a `[section]` only apply to mainnet (and are an error on other
//! chains), the *first* value of an option in the config file wins while the *last* one on
//! the command line wins, and `-noX` negates an option. Core's `settings.json` (values set
//! at runtime, e.g. by its GUI) is read too, between the command line and the config file,
//! unless `-nosettings`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One value of a setting: a string, or the negation `-nofoo` (Core stores it as `false`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Setting {
    Value(String),
    Negated,
}

/// Options regtest-sim accepts: Bitcoin Core's bitcoind options (most have no effect on the
/// sim but must not be refused, because a real deployment passes them) and the sim's own.
/// `true` marks Core's network-only options.
const KNOWN_ARGS: &[(&str, bool)] = &[
    // Chain selection.
    ("chain", false),
    ("regtest", false),
    ("testnet", false),
    ("testnet4", false),
    ("signet", false),
    ("signetchallenge", false),
    ("signetseednode", false),
    ("vbparams", false),
    ("test", false),
    // General.
    ("help", false),
    ("h", false),
    ("?", false),
    ("help-debug", false),
    ("version", false),
    ("alertnotify", false),
    ("assumevalid", false),
    ("blocksdir", false),
    ("blocksxor", false),
    ("fastprune", false),
    ("blocknotify", false),
    ("blockreconstructionextratxn", false),
    ("blocksonly", false),
    ("coinstatsindex", false),
    ("conf", false),
    ("datadir", false),
    ("dbbatchsize", false),
    ("dbcache", false),
    ("includeconf", false),
    ("allowignoredconf", false),
    ("loadblock", false),
    ("maxmempool", false),
    ("mempoolexpiry", false),
    ("minimumchainwork", false),
    ("par", false),
    ("persistmempool", false),
    ("persistmempoolv1", false),
    ("pid", false),
    ("prune", false),
    ("reindex", false),
    ("reindex-chainstate", false),
    ("settings", false),
    ("startupnotify", false),
    ("shutdownnotify", false),
    ("txindex", false),
    ("blockfilterindex", false),
    ("daemon", false),
    ("daemonwait", false),
    // Network.
    ("addnode", true),
    ("asmap", false),
    ("bantime", false),
    ("bind", true),
    ("cjdnsreachable", false),
    ("connect", true),
    ("discover", false),
    ("dns", false),
    ("dnsseed", false),
    ("externalip", false),
    ("fixedseeds", false),
    ("forcednsseed", false),
    ("listen", false),
    ("listenonion", false),
    ("maxconnections", false),
    ("maxreceivebuffer", false),
    ("maxsendbuffer", false),
    ("maxuploadtarget", false),
    ("onion", false),
    ("i2psam", false),
    ("i2pacceptincoming", false),
    ("onlynet", false),
    ("v2transport", false),
    ("peerbloomfilters", false),
    ("peerblockfilters", false),
    ("txreconciliation", false),
    ("port", true),
    ("proxy", false),
    ("proxyrandomize", false),
    ("seednode", false),
    ("networkactive", false),
    ("timeout", false),
    ("peertimeout", false),
    ("torcontrol", false),
    ("torpassword", false),
    ("natpmp", false),
    ("upnp", false),
    ("whitebind", false),
    ("whitelist", false),
    ("zmqpubhashblock", false),
    ("zmqpubhashtx", false),
    ("zmqpubrawblock", false),
    ("zmqpubrawtx", false),
    ("zmqpubsequence", false),
    ("zmqpubhashblockhwm", false),
    ("zmqpubhashtxhwm", false),
    ("zmqpubrawblockhwm", false),
    ("zmqpubrawtxhwm", false),
    ("zmqpubsequencehwm", false),
    // Debugging and testing.
    ("checkblocks", false),
    ("checklevel", false),
    ("checkblockindex", false),
    ("checkaddrman", false),
    ("checkmempool", false),
    ("checkpoints", false),
    ("deprecatedrpc", false),
    ("stopafterblockimport", false),
    ("stopatheight", false),
    ("limitancestorcount", false),
    ("limitancestorsize", false),
    ("limitdescendantcount", false),
    ("limitdescendantsize", false),
    ("limitclustercount", false),
    ("limitclustersize", false),
    ("capturemessages", false),
    ("mocktime", false),
    ("maxsigcachesize", false),
    ("maxtipage", false),
    ("printpriority", false),
    ("uacomment", false),
    ("debug", false),
    ("debugexclude", false),
    ("debuglogfile", false),
    ("logips", false),
    ("loglevel", false),
    ("loglevelalways", false),
    ("logsourcelocations", false),
    ("logthreadnames", false),
    ("logtimestamps", false),
    ("logtimemicros", false),
    ("logratelimit", false),
    ("printtoconsole", false),
    ("shrinkdebugfile", false),
    // Node relay.
    ("acceptnonstdtxn", false),
    ("incrementalrelayfee", false),
    ("dustrelayfee", false),
    ("acceptstalefeeestimates", false),
    ("bytespersigop", false),
    ("datacarrier", false),
    ("datacarriersize", false),
    ("permitbaremultisig", false),
    ("minrelaytxfee", false),
    ("whitelistforcerelay", false),
    ("whitelistrelay", false),
    // Block creation.
    ("blockmaxweight", false),
    ("blockreservedweight", false),
    ("blockmintxfee", false),
    ("blockversion", false),
    // RPC server.
    ("rest", false),
    ("rpcallowip", false),
    ("rpcauth", false),
    ("rpcbind", true),
    ("rpcdoccheck", false),
    ("rpccookiefile", false),
    ("rpccookieperms", false),
    ("rpcpassword", false),
    ("rpcport", true),
    ("rpcservertimeout", false),
    ("rpcthreads", false),
    ("rpcuser", false),
    ("rpcwhitelist", false),
    ("rpcwhitelistdefault", false),
    ("rpcworkqueue", false),
    ("server", false),
    ("ipcbind", false),
    // Wallet (plugnode runs with disablewallet=1; accepted so configs parse).
    ("disablewallet", false),
    ("wallet", true),
    ("walletdir", false),
    ("walletbroadcast", false),
    ("walletnotify", false),
    ("walletrbf", false),
    ("addresstype", false),
    ("changetype", false),
    ("fallbackfee", false),
    ("discardfee", false),
    ("mintxfee", false),
    ("paytxfee", false),
    ("maxtxfee", false),
    ("keypool", false),
    ("spendzeroconfchange", false),
    ("txconfirmtarget", false),
    ("avoidpartialspends", false),
    ("consolidatefeerate", false),
    // regtest-sim's own options.
    ("simblockinterval", false),
    ("simwarmup", false),
    ("simstopdelay", false),
    ("simminingaddress", false),
    ("simupstream", false),
    ("simupstreamcookie", false),
    ("simupstreamauth", false),
];

/// Name of the default configuration file, like Core's `BITCOIN_CONF_FILENAME`.
pub const CONF_FILENAME: &str = "bitcoin.conf";
/// Name of the default settings file in the chain's directory (`BITCOIN_SETTINGS_FILENAME`).
pub const SETTINGS_FILENAME: &str = "settings.json";

/// The chains Core knows, in the order Core lists its config sections.
const CHAINS: &[&str] = &["main", "test", "testnet4", "signet", "regtest"];

fn arg_known(name: &str) -> Option<bool> {
    KNOWN_ARGS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, network_only)| *network_only)
}

/// A `[section]` that appeared in the config file (to warn about unknown ones).
#[derive(Clone, Debug)]
struct SectionInfo {
    name: String,
    file: String,
    line: usize,
}

/// Where a setting came from, in Core's precedence order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    CommandLine,
    /// `settings.json`.
    RwSettings,
    ConfigNetworkSection,
    ConfigDefaultSection,
}

/// Parsed command line and config file, answering `GetArg`-style questions with Core's
/// precedence rules.
#[derive(Clone, Debug, Default)]
pub struct Args {
    command_line: BTreeMap<String, Vec<Setting>>,
    /// `settings.json`: name → its value (an array gives several).
    rw_settings: BTreeMap<String, Vec<Setting>>,
    /// section ("" = top of the file) → name → values in file order.
    config: BTreeMap<String, BTreeMap<String, Vec<Setting>>>,
    sections: Vec<SectionInfo>,
    /// Positional tokens (Core refuses them after reading the config).
    positional: Vec<String>,
    /// The selected chain once known; network-only options ignore the default section
    /// unless this is "main".
    network: String,
    /// Messages Core would log while parsing (printed once logging is up).
    pub log_lines: Vec<String>,
    /// The config file that was read, if any.
    pub config_path: Option<PathBuf>,
}

/// A `settings.json` value as Core reads it: `false` negates, `true` is "1", numbers and
/// strings are their text, `null` is unset.
fn json_setting(value: &serde_json::Value) -> Option<Setting> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(false) => Some(Setting::Negated),
        serde_json::Value::Bool(true) => Some(Setting::Value("1".into())),
        serde_json::Value::String(text) => Some(Setting::Value(text.clone())),
        other => Some(Setting::Value(other.to_string())),
    }
}

/// Core's `InterpretBool`: empty means true, otherwise `atoi(value) != 0`.
pub fn interpret_bool(value: &str) -> bool {
    value.is_empty() || atoi(value) != 0
}

/// Core's `LocaleIndependentAtoi<int64_t>`: leading whitespace, an optional sign, digits up
/// to the first non-digit; 0 when there are none; saturating.
pub fn atoi(value: &str) -> i64 {
    let s = value.trim_start();
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    // Core refuses "+-5" and "-+5" style double signs by returning 0.
    if digits.starts_with(['+', '-']) {
        return 0;
    }
    let mut result: i64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        let d = i64::from(b - b'0');
        result = if negative {
            result.saturating_mul(10).saturating_sub(d)
        } else {
            result.saturating_mul(10).saturating_add(d)
        };
    }
    result
}

/// Core's `InterpretKey`: "section.name", "noname".
fn interpret_key(key: &str) -> (String, String, bool) {
    let (section, name) = match key.find('.') {
        Some(i) => (key[..i].to_string(), &key[i + 1..]),
        None => (String::new(), key),
    };
    match name.strip_prefix("no") {
        Some(rest) => (section, rest.to_string(), true),
        None => (section, name.to_string(), false),
    }
}

/// Core's `InterpretValue` for options without special flags.
fn interpret_value(
    negated: bool,
    value: Option<&str>,
    log: &mut Vec<String>,
    name: &str,
) -> Setting {
    if negated {
        if let Some(v) = value {
            if !interpret_bool(v) {
                log.push(format!(
                    "Warning: parsed potentially confusing double-negative -{name}={v}"
                ));
                return Setting::Value("1".into());
            }
        }
        return Setting::Negated;
    }
    Setting::Value(value.unwrap_or("").to_string())
}

/// The values after the last negation, and whether the last value is a negation (Core's
/// `SettingsSpan`).
fn span(values: &[Setting]) -> (&[Setting], bool) {
    let negated_upto = values
        .iter()
        .rposition(|v| *v == Setting::Negated)
        .map_or(0, |i| i + 1);
    let last_negated = values.last() == Some(&Setting::Negated);
    (&values[negated_upto..], last_negated)
}

impl Args {
    /// Parses bitcoind's command line (`argv[0]` excluded). The error is the text Core puts
    /// after "Error parsing command line arguments: ".
    pub fn parse_command_line(argv: &[String]) -> Result<Args, String> {
        let mut args = Args::default();
        let mut iter = argv.iter();
        while let Some(raw) = iter.next() {
            if raw == "-" {
                break;
            }
            let (mut key, value) = match raw.find('=') {
                Some(i) => (raw[..i].to_string(), Some(&raw[i + 1..])),
                None => (raw.clone(), None),
            };
            if !key.starts_with('-') {
                // bitcoind collects the rest as "commands" and refuses them later.
                args.positional.push(raw.clone());
                args.positional.extend(iter.by_ref().cloned());
                break;
            }
            if key.len() > 1 && key.as_bytes()[1] == b'-' {
                key.remove(0);
            }
            key.remove(0);
            let (section, name, negated) = interpret_key(&key);
            if arg_known(&name).is_none() || !section.is_empty() {
                return Err(format!("Invalid parameter {raw}"));
            }
            let setting = interpret_value(negated, value, &mut args.log_lines, &name);
            args.command_line.entry(name).or_default().push(setting);
        }
        if let Some(values) = args.command_line.get("includeconf") {
            let (live, _) = span(values);
            if let Some(Setting::Value(first)) = live.first() {
                return Err(format!(
                    "-includeconf cannot be used from commandline; -includeconf=\"{first}\""
                ));
            }
        }
        Ok(args)
    }

    /// Tokens on the command line that are not options (Core refuses them).
    pub fn positional(&self) -> &[String] {
        &self.positional
    }

    /// Reads one config file's text with Core's rules (`GetConfigOptions` and
    /// `ReadConfigStream` with unknown keys ignored, as bitcoind does).
    pub fn read_config_text(&mut self, text: &str, file_name: &str) -> Result<(), String> {
        let mut prefix = String::new();
        for (index, raw_line) in text.split('\n').enumerate() {
            let line_number = index + 1;
            let (mut line, used_hash) = match raw_line.find('#') {
                Some(i) => (&raw_line[..i], true),
                None => (raw_line, false),
            };
            line = line.trim_matches([' ', '\t', '\r', '\n']);
            if line.is_empty() {
                continue;
            }
            if line.starts_with('[') && line.ends_with(']') && line.len() >= 2 {
                let section = &line[1..line.len() - 1];
                self.sections.push(SectionInfo {
                    name: section.to_string(),
                    file: file_name.to_string(),
                    line: line_number,
                });
                prefix = format!("{section}.");
            } else if line.starts_with('-') {
                return Err(format!(
                    "parse error on line {line_number}: {line}, options in configuration file must be specified without leading -"
                ));
            } else if let Some(eq) = line.find('=') {
                let name = format!(
                    "{prefix}{}",
                    line[..eq].trim_matches([' ', '\t', '\r', '\n'])
                );
                let value = line[eq + 1..].trim_matches([' ', '\t', '\r', '\n']);
                if used_hash && name.contains("rpcpassword") {
                    return Err(format!(
                        "parse error on line {line_number}, using # in rpcpassword can be ambiguous and should be avoided"
                    ));
                }
                if let Some(dot) = name.rfind('.') {
                    if prefix.len() <= dot {
                        self.sections.push(SectionInfo {
                            name: name[..dot].to_string(),
                            file: file_name.to_string(),
                            line: line_number,
                        });
                    }
                }
                let (section, key, negated) = interpret_key(&name);
                if key == "conf" {
                    return Err("conf cannot be set in the configuration file; use includeconf= if you want to include additional config files".into());
                }
                if arg_known(&key).is_some() {
                    let setting = interpret_value(negated, Some(value), &mut self.log_lines, &key);
                    self.config
                        .entry(section)
                        .or_default()
                        .entry(key)
                        .or_default()
                        .push(setting);
                } else {
                    self.log_lines
                        .push(format!("Ignoring unknown configuration value {name}"));
                }
            } else {
                let mut error = format!("parse error on line {line_number}: {line}");
                if line.len() >= 2 && line.starts_with("no") {
                    error.push_str(&format!(
                        ", if you intended to specify a negated option, use {line}=1 instead"
                    ));
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// Core's `ReadConfigFiles`: the file named by `-conf` (relative to the data directory),
    /// `bitcoin.conf` in the data directory by default; a missing default file is fine.
    /// `includeconf=` is not supported by the sim and refused.
    pub fn read_config_files(&mut self, datadir: &Path) -> Result<(), String> {
        if self.is_negated("conf") {
            return Ok(());
        }
        let conf_arg = self.get("conf").filter(|c| !c.is_empty());
        let path = abs_path_for_config_val(
            datadir,
            Path::new(conf_arg.as_deref().unwrap_or(CONF_FILENAME)),
        );
        if path.is_dir() {
            return Err(format!(
                "Config file \"{}\" is a directory.",
                path.display()
            ));
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                self.read_config_text(&text, &path.display().to_string())?;
                self.config_path = Some(path);
            }
            Err(_) if conf_arg.is_some() => {
                return Err(format!(
                    "specified config file \"{}\" could not be opened.",
                    path.display()
                ));
            }
            Err(_) => {}
        }
        let includes: Vec<String> = self
            .config
            .values()
            .filter_map(|s| s.get("includeconf"))
            .flat_map(|v| span(v).0.iter())
            .filter_map(|v| match v {
                Setting::Value(s) => Some(s.clone()),
                Setting::Negated => None,
            })
            .collect();
        if let Some(first) = includes.first() {
            return Err(format!(
                "Failed to include configuration file {first} (includeconf= is not supported by regtest-sim)"
            ));
        }
        Ok(())
    }

    /// Core's `InitSettings`/`ReadSettingsFile`: `settings.json` in the chain's directory
    /// (`-settings=<file>` names another), skipped with `-nosettings`; a missing file is
    /// fine. (Core also writes the file back at start; the sim only reads it.)
    pub fn read_settings_file(&mut self, net_dir: &Path) -> Result<(), String> {
        if self.is_negated("settings") {
            return Ok(());
        }
        let name = self
            .get("settings")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| SETTINGS_FILENAME.into());
        let path = abs_path_for_config_val(net_dir, Path::new(&name));
        let failed = |detail: String| format!("Settings file could not be read:\n- {detail}");
        let text = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) => {
                return Err(failed(format!(
                    "Failed to open settings file {}",
                    path.display()
                )))
            }
        };
        let value: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|_| failed(format!("Unable to parse settings file {}", path.display())))?;
        let serde_json::Value::Object(object) = value else {
            return Err(failed(format!(
                "Found non-object value {value} in settings file {}",
                path.display()
            )));
        };
        for (name, value) in object {
            let values: Vec<Setting> = match value {
                serde_json::Value::Array(items) => items.iter().filter_map(json_setting).collect(),
                other => json_setting(&other).into_iter().collect(),
            };
            self.rw_settings.insert(name, values);
        }
        Ok(())
    }

    /// Core's `GetChainArg`/`GetChainTypeString`.
    pub fn chain(&self) -> Result<String, String> {
        let get_net = |name: &str| -> bool {
            match self.setting("", name, false, true) {
                None => false,
                Some(Setting::Negated) => false,
                Some(Setting::Value(v)) => interpret_bool(&v),
            }
        };
        let regtest = get_net("regtest");
        let signet = get_net("signet");
        let testnet = get_net("testnet");
        let testnet4 = get_net("testnet4");
        let chain_arg = self.get("chain");
        let count = usize::from(chain_arg.is_some())
            + usize::from(regtest)
            + usize::from(signet)
            + usize::from(testnet)
            + usize::from(testnet4);
        if count > 1 {
            return Err("Invalid combination of -regtest, -signet, -testnet, -testnet4 and -chain. Can use at most one.".into());
        }
        Ok(if let Some(chain) = chain_arg {
            chain
        } else if regtest {
            "regtest".into()
        } else if signet {
            "signet".into()
        } else if testnet {
            "test".into()
        } else if testnet4 {
            "testnet4".into()
        } else {
            "main".into()
        })
    }

    /// Selects the chain whose config section applies from now on (Core's
    /// `SelectConfigNetwork`).
    pub fn select_network(&mut self, network: &str) {
        self.network = network.to_string();
    }

    fn ignores_default_section(&self, name: &str) -> bool {
        self.network != "main" && arg_known(name) == Some(true)
    }

    /// Visits the sources of `name` in precedence order (Core's `MergeSettings`).
    fn merge<'a>(&'a self, section: &str, name: &str, mut f: impl FnMut(&'a [Setting], Source)) {
        if let Some(values) = self.command_line.get(name) {
            f(values, Source::CommandLine);
        }
        if let Some(values) = self.rw_settings.get(name) {
            f(values, Source::RwSettings);
        }
        if !section.is_empty() {
            if let Some(values) = self.config.get(section).and_then(|s| s.get(name)) {
                f(values, Source::ConfigNetworkSection);
            }
        }
        if let Some(values) = self.config.get("").and_then(|s| s.get(name)) {
            f(values, Source::ConfigDefaultSection);
        }
    }

    /// Core's `common::GetSetting`.
    fn setting(
        &self,
        section: &str,
        name: &str,
        ignore_default_section: bool,
        get_chain_type: bool,
    ) -> Option<Setting> {
        let mut result = None;
        let mut done = false;
        self.merge(section, name, |values, source| {
            if done {
                return;
            }
            let (live, last_negated) = span(values);
            let from_config = matches!(
                source,
                Source::ConfigNetworkSection | Source::ConfigDefaultSection
            );
            let reverse_precedence = from_config && !get_chain_type;
            if ignore_default_section && source == Source::ConfigDefaultSection && !last_negated {
                return;
            }
            if get_chain_type && source == Source::CommandLine && last_negated {
                return;
            }
            if !live.is_empty() && !last_negated {
                result = Some(if reverse_precedence {
                    live[0].clone()
                } else {
                    live[live.len() - 1].clone()
                });
                done = true;
            } else if last_negated {
                result = Some(Setting::Negated);
                done = true;
            }
        });
        result
    }

    fn get_setting(&self, name: &str) -> Option<Setting> {
        self.setting(
            &self.network,
            name,
            self.ignores_default_section(name),
            false,
        )
    }

    /// Core's `GetArg`: the value, "0" for a negated option, `None` when unset.
    pub fn get(&self, name: &str) -> Option<String> {
        match self.get_setting(name)? {
            Setting::Value(v) => Some(v),
            Setting::Negated => Some("0".into()),
        }
    }

    /// Core's `IsArgSet`.
    pub fn is_set(&self, name: &str) -> bool {
        self.get_setting(name).is_some()
    }

    /// Core's `IsArgNegated`.
    pub fn is_negated(&self, name: &str) -> bool {
        self.get_setting(name) == Some(Setting::Negated)
    }

    /// Core's `GetBoolArg`.
    pub fn get_bool(&self, name: &str, default: bool) -> bool {
        match self.get_setting(name) {
            None => default,
            Some(Setting::Negated) => false,
            Some(Setting::Value(v)) => interpret_bool(&v),
        }
    }

    /// Core's `GetIntArg`.
    pub fn get_int(&self, name: &str, default: i64) -> i64 {
        match self.get_setting(name) {
            None => default,
            Some(Setting::Negated) => 0,
            Some(Setting::Value(v)) => atoi(&v),
        }
    }

    /// Core's `GetArgs` (`GetSettingsList`): every value of a multi-value option.
    pub fn get_list(&self, name: &str) -> Vec<String> {
        let ignore_default = self.ignores_default_section(name);
        let mut result: Vec<String> = Vec::new();
        let mut done = false;
        let mut prev_negated_empty = false;
        self.merge(&self.network, name, |values, source| {
            let from_config = matches!(
                source,
                Source::ConfigNetworkSection | Source::ConfigDefaultSection
            );
            let add_zombie = from_config && !prev_negated_empty;
            if ignore_default && source == Source::ConfigDefaultSection {
                return;
            }
            let (live, last_negated) = span(values);
            if !done || add_zombie {
                for value in live {
                    if let Setting::Value(v) = value {
                        result.push(v.clone());
                    }
                }
            }
            let negated_any = values.contains(&Setting::Negated);
            done |= negated_any;
            prev_negated_empty |= last_negated && result.is_empty();
        });
        result
    }

    /// Core's `GetUnsuitableSectionOnlyArgs`: network-only options set only at the top of
    /// the config file while a chain other than main is selected.
    pub fn unsuitable_section_only_args(&self) -> Vec<String> {
        if self.network.is_empty() || self.network == "main" {
            return Vec::new();
        }
        KNOWN_ARGS
            .iter()
            .filter(|(_, network_only)| *network_only)
            .map(|(name, _)| *name)
            .filter(|name| {
                let mut default_section = false;
                let mut other = false;
                self.merge(&self.network, name, |values, source| {
                    let (live, last_negated) = span(values);
                    if live.is_empty() || last_negated {
                        return;
                    }
                    if source == Source::ConfigDefaultSection {
                        default_section = true;
                    } else {
                        other = true;
                    }
                });
                default_section && !other
            })
            .map(|name| format!("-{name}"))
            .collect()
    }

    /// Config sections Core does not know, as "file:line Section [x] is not recognized.".
    pub fn unrecognized_sections(&self) -> Vec<String> {
        self.sections
            .iter()
            .filter(|s| !CHAINS.contains(&s.name.as_str()))
            .map(|s| {
                format!(
                    "{}:{} Section [{}] is not recognized.",
                    s.file, s.line, s.name
                )
            })
            .collect()
    }

    /// Every option given on the command line or in the config file, for the log (Core's
    /// `LogArgs`), with secrets masked.
    pub fn describe(&self) -> Vec<String> {
        let sensitive = |name: &str| {
            matches!(
                name,
                "rpcpassword" | "rpcauth" | "torpassword" | "simupstreamauth"
            )
        };
        let mut lines = Vec::new();
        for (section, values) in &self.config {
            let section_str = if section.is_empty() {
                String::new()
            } else {
                format!("[{section}] ")
            };
            for (name, list) in values {
                for value in list {
                    lines.push(format!(
                        "Config file arg: {section_str}{name}={}",
                        show(name, value, sensitive(name))
                    ));
                }
            }
        }
        for (name, list) in &self.command_line {
            for value in list {
                lines.push(format!(
                    "Command-line arg: {name}={}",
                    show(name, value, sensitive(name))
                ));
            }
        }
        lines
    }
}

fn show(_name: &str, value: &Setting, sensitive: bool) -> String {
    if sensitive {
        return "****".into();
    }
    match value {
        Setting::Value(v) => format!("\"{v}\""),
        Setting::Negated => "false".into(),
    }
}

/// Core's `AbsPathForConfigVal` (not network-specific): relative paths are relative to the
/// data directory.
pub fn abs_path_for_config_val(datadir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() || path.as_os_str().is_empty() {
        path.to_path_buf()
    } else {
        datadir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Args {
        Args::parse_command_line(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn unknown_options_are_refused_like_core() {
        let err = Args::parse_command_line(&["-regtest".into(), "-bogus=1".into()]).unwrap_err();
        assert_eq!(err, "Invalid parameter -bogus=1");
        let err = Args::parse_command_line(&["-regtest.rpcport=1".into()]).unwrap_err();
        assert_eq!(err, "Invalid parameter -regtest.rpcport=1");
    }

    #[test]
    fn double_dash_negation_and_last_value_wins_on_the_command_line() {
        let mut args = cli(&[
            "--regtest",
            "-rpcport=1",
            "-rpcport=2",
            "-nolisten",
            "-server",
        ]);
        args.select_network("regtest");
        assert_eq!(args.get("rpcport").as_deref(), Some("2"));
        assert!(!args.get_bool("listen", true));
        assert!(args.get_bool("server", false));
        assert_eq!(args.chain().unwrap(), "regtest");
    }

    #[test]
    fn network_only_options_at_the_top_apply_to_main_only() {
        let mut args = cli(&[]);
        args.read_config_text(
            "chain=regtest\nrpcport=1234\ndbcache=300 # comment\n[regtest]\nport=5555\nrpcauth=a:b$c\nrpcauth=d:e$f\n",
            "bitcoin.conf",
        )
        .unwrap();
        let chain = args.chain().unwrap();
        assert_eq!(chain, "regtest");
        args.select_network(&chain);
        assert_eq!(args.get("rpcport"), None, "rpcport at the top is for main");
        assert_eq!(args.get("port").as_deref(), Some("5555"));
        assert_eq!(args.get_int("dbcache", 0), 300);
        assert_eq!(args.get_list("rpcauth"), vec!["a:b$c", "d:e$f"]);
        assert_eq!(args.unsuitable_section_only_args(), vec!["-rpcport"]);
    }

    #[test]
    fn first_value_wins_in_the_config_file_and_command_line_beats_it() {
        let mut args = cli(&["-dbcache=7"]);
        args.read_config_text("regtest=1\ndbcache=1\ndbcache=2\nprune=5\nprune=6\n", "c")
            .unwrap();
        args.select_network("regtest");
        assert_eq!(args.get_int("dbcache", 0), 7);
        assert_eq!(args.get_int("prune", 0), 5);
    }

    #[test]
    fn config_parse_errors_match_core() {
        let mut args = cli(&[]);
        assert_eq!(
            args.read_config_text("server=1\nnolisten\n", "c").unwrap_err(),
            "parse error on line 2: nolisten, if you intended to specify a negated option, use nolisten=1 instead"
        );
        assert_eq!(
            args.read_config_text("-server=1\n", "c").unwrap_err(),
            "parse error on line 1: -server=1, options in configuration file must be specified without leading -"
        );
        assert!(args
            .read_config_text("rpcpassword=a#b\n", "c")
            .unwrap_err()
            .contains("using # in rpcpassword"));
    }

    #[test]
    fn conflicting_chains_are_refused() {
        let args = cli(&["-regtest", "-chain=main"]);
        assert!(args.chain().unwrap_err().starts_with("Invalid combination"));
    }

    #[test]
    fn unknown_sections_and_keys_are_reported() {
        let mut args = cli(&[]);
        args.read_config_text("[regtest]\nfoo=1\n[bogus]\n", "c")
            .unwrap();
        assert_eq!(
            args.unrecognized_sections(),
            vec!["c:3 Section [bogus] is not recognized."]
        );
        assert!(args
            .log_lines
            .iter()
            .any(|l| l == "Ignoring unknown configuration value regtest.foo"));
    }

    #[test]
    fn atoi_follows_core() {
        assert_eq!(atoi("12abc"), 12);
        assert_eq!(atoi(" -3"), -3);
        assert_eq!(atoi("x"), 0);
        assert_eq!(atoi("+-1"), 0);
        assert!(interpret_bool(""));
        assert!(!interpret_bool("0"));
    }
}
