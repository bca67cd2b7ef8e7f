//! What regtest-sim makes of its command line and `bitcoin.conf`: the typed settings the
//! rest of the sim uses, and the start-up errors Core would print for the same input.

use super::args::Args;
use bitcoin::{Amount, ScriptBuf};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Regtest's default RPC port (`CBaseChainParams` for regtest).
pub const DEFAULT_RPC_PORT: u16 = 18443;
/// Regtest's default P2P port.
pub const DEFAULT_P2P_PORT: u16 = 18444;
/// Core's `MIN_DISK_SPACE_FOR_BLOCK_FILES` in MiB.
const MIN_PRUNE_MIB: i64 = 550;

/// How the process was asked to start.
#[derive(Debug)]
pub enum Invocation {
    /// Run the node.
    Run(Box<Settings>),
    /// `-help`/`-version`: print this text on stdout and exit 0.
    Print(String),
}

/// Everything the sim needs to know to run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `<datadir>/regtest`, where everything is stored.
    pub net_dir: PathBuf,
    pub config_path: Option<PathBuf>,
    pub rpc_port: u16,
    /// Addresses to bind the RPC server to (`-rpcbind` with `-rpcallowip`, else loopback).
    pub rpc_bind: Vec<(String, u16)>,
    /// Client subnets allowed besides loopback (`-rpcallowip`).
    pub rpc_allow: Vec<Subnet>,
    pub rpc_user: Option<String>,
    pub rpc_password: Option<String>,
    pub rpc_auth: Vec<String>,
    /// Cookie file path, `None` for `-norpccookiefile`.
    pub cookie_file: Option<PathBuf>,
    pub rpc_server_timeout: Duration,
    pub p2p_port: u16,
    pub print_to_console: bool,
    pub debug_log: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub txindex: bool,
    /// `-prune` in MiB (0 = off, 1 = manual).
    pub prune_mib: u64,
    pub wallet_disabled: bool,
    pub persist_mempool: bool,
    /// `-maxtipage` in seconds: the chain counts as syncing while its tip is older.
    pub max_tip_age: u64,
    pub policy: Policy,
    pub uacomment: Vec<String>,
    /// `-simblockinterval`: mine a block this often (demo).
    pub block_interval: Option<Duration>,
    /// `-simwarmup`: how long RPC answers -28 at start.
    pub warmup: Duration,
    /// `-simstopdelay`: pretend the shutdown flush takes this long.
    pub stop_delay: Duration,
    /// Where interval-mined coinbases go (`-simminingaddress`).
    pub mining_script: ScriptBuf,
    /// `-simupstream`: forward RPC to another regtest-sim instead of keeping a chain.
    pub upstream: Option<UpstreamSettings>,
    /// Log lines collected while parsing (printed once logging is up).
    pub parse_log: Vec<String>,
    /// Warnings Core prints as "Warning: …" on stderr.
    pub init_warnings: Vec<String>,
    /// Every option, for the log.
    pub described_args: Vec<String>,
}

/// Upstream mode (`-simupstream=<host>:<port>`): where RPC is forwarded and how the sim
/// authenticates there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamSettings {
    pub host: String,
    pub port: u16,
    pub auth: UpstreamAuth,
}

/// The credentials for the upstream sim.
#[derive(Clone, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// `-simupstreamcookie`: the upstream's `.cookie` file, read at every request (a
    /// restarted upstream writes a new one).
    CookieFile(PathBuf),
    /// `-simupstreamauth`: `user:password`.
    UserPassword(String),
}

impl std::fmt::Debug for UpstreamAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamAuth::CookieFile(path) => f.debug_tuple("CookieFile").field(path).finish(),
            UpstreamAuth::UserPassword(_) => f.write_str("UserPassword(****)"),
        }
    }
}

impl UpstreamSettings {
    /// `host:port` (`[v6]:port`), for messages.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `-simupstream`, `-simupstreamcookie`, `-simupstreamauth`.
fn upstream_settings(
    args: &Args,
    datadir: &Path,
    rpc_port: u16,
) -> Result<Option<UpstreamSettings>, String> {
    let value = |name: &str| {
        args.get(name)
            .filter(|v| !v.is_empty() && !args.is_negated(name))
    };
    let cookie = value("simupstreamcookie");
    let userpass = value("simupstreamauth");
    let Some(address) = value("simupstream") else {
        if cookie.is_some() || userpass.is_some() {
            return Err(
                "-simupstreamcookie and -simupstreamauth need -simupstream=<host>:<port>".into(),
            );
        }
        return Ok(None);
    };
    let (host, port) = split_host_port(&address, DEFAULT_RPC_PORT)
        .filter(|(host, _)| !host.is_empty())
        .ok_or_else(|| {
            format!("Invalid -simupstream address: '{address}' (expected <host>:<port>)")
        })?;
    let auth = match (cookie, userpass) {
        (Some(_), Some(_)) => {
            return Err("-simupstreamcookie and -simupstreamauth cannot be used together".into())
        }
        (None, None) => {
            return Err("-simupstream needs -simupstreamcookie=<upstream's .cookie file> or -simupstreamauth=<user>:<password>".into())
        }
        (Some(path), None) => UpstreamAuth::CookieFile(
            super::args::abs_path_for_config_val(datadir, Path::new(&path)),
        ),
        (None, Some(userpass)) => {
            if !userpass.contains(':') {
                return Err("-simupstreamauth must be <user>:<password>".into());
            }
            UpstreamAuth::UserPassword(userpass)
        }
    };
    let local = matches!(host.as_str(), "localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    if local && port == rpc_port {
        return Err(format!(
            "-simupstream={address} is this sim's own RPC port; point it at another regtest-sim"
        ));
    }
    Ok(Some(UpstreamSettings { host, port, auth }))
}

/// Mempool policy knobs (Core's `MemPoolOptions` subset).
#[derive(Clone, Debug)]
pub struct Policy {
    /// sat/kvB.
    pub min_relay_feerate: u64,
    /// sat/kvB.
    pub incremental_relay_feerate: u64,
    /// sat/kvB.
    pub dust_relay_feerate: u64,
    pub max_mempool_bytes: u64,
    pub max_datacarrier_bytes: Option<u64>,
    pub require_standard: bool,
    pub permit_bare_multisig: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_relay_feerate: 100,
            incremental_relay_feerate: 100,
            dust_relay_feerate: 3000,
            max_mempool_bytes: 300_000_000,
            max_datacarrier_bytes: Some(100_000),
            require_standard: true,
            permit_bare_multisig: true,
        }
    }
}

/// An `-rpcallowip` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subnet {
    network: IpAddr,
    prefix: u8,
}

impl Subnet {
    /// Parses "1.2.3.4", "1.2.3.0/24", "1.2.3.0/255.255.255.0", "::1", "::/0".
    pub fn parse(text: &str) -> Option<Subnet> {
        let (addr, mask) = match text.split_once('/') {
            Some((a, m)) => (a, Some(m)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match mask {
            None => max,
            Some(m) => match m.parse::<u8>() {
                Ok(p) if p <= max => p,
                Ok(_) => return None,
                Err(_) => {
                    let mask: IpAddr = m.parse().ok()?;
                    let bits: u128 = match mask {
                        IpAddr::V4(v4) if network.is_ipv4() => u128::from(u32::from(v4)) << 96,
                        IpAddr::V6(v6) if network.is_ipv6() => u128::from(v6),
                        _ => return None,
                    };
                    let ones = bits.leading_ones();
                    if bits.checked_shl(ones).unwrap_or(0) != 0 {
                        return None;
                    }
                    u8::try_from(ones).ok()?
                }
            },
        };
        Some(Subnet { network, prefix })
    }

    /// Whether `ip` lies in this subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        let (a, b, width) = match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                (u128::from(u32::from(n)), u128::from(u32::from(i)), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        let prefix = u32::from(self.prefix);
        if prefix == 0 {
            return true;
        }
        let shift = width - prefix;
        (a >> shift) == (b >> shift)
    }
}

/// Parses a BTC amount the way Core's `ParseMoney` does for fee options ("0.00001").
pub fn parse_money(text: &str) -> Option<Amount> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('-') {
        return None;
    }
    Amount::from_str_in(text, bitcoin::Denomination::Bitcoin).ok()
}

/// Turns arguments into settings, or into the message Core prints after "Error: ".
pub fn from_args(argv: &[String]) -> Result<Invocation, String> {
    let mut args = Args::parse_command_line(argv)
        .map_err(|e| format!("Error parsing command line arguments: {e}"))?;

    if args.get_bool("help", false)
        || args.get_bool("h", false)
        || args.get_bool("?", false)
        || args.get_bool("help-debug", false)
    {
        return Ok(Invocation::Print(help_text()));
    }
    if args.get_bool("version", false) {
        return Ok(Invocation::Print(format!(
            "{} daemon version v{} regtest-sim {}\n",
            super::CLIENT_NAME,
            super::CLIENT_VERSION_STRING,
            env!("CARGO_PKG_VERSION")
        )));
    }

    // Data directory: -datadir or ~/.bitcoin, which must exist when given explicitly.
    let datadir = match args
        .get("datadir")
        .filter(|d| !d.is_empty() && !args.is_negated("datadir"))
    {
        Some(dir) => {
            let path = PathBuf::from(&dir);
            if !path.is_dir() {
                return Err(format!(
                    "Specified data directory \"{dir}\" does not exist."
                ));
            }
            std::path::absolute(&path).unwrap_or(path)
        }
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            home.join(".bitcoin")
        }
    };

    args.read_config_files(&datadir)
        .map_err(|e| format!("Error reading configuration file: {e}"))?;
    // The config file may not move the data directory elsewhere (Core re-reads it; the
    // sim keeps it simple and only accepts the same directory).
    if let Some(dir) = args.get("datadir") {
        let path = PathBuf::from(&dir);
        if !path.is_dir() {
            return Err(format!(
                "specified data directory \"{dir}\" does not exist."
            ));
        }
    }

    let chain = args.chain()?;
    if chain != "regtest" {
        return Err(format!(
            "regtest-sim only simulates regtest, but chain \"{chain}\" was selected. Start it with -regtest or -chain=regtest (or chain=regtest in bitcoin.conf)."
        ));
    }
    args.select_network(&chain);

    // Core reads settings.json once the chain is known, before any option is used.
    let net_dir = datadir.join("regtest");
    args.read_settings_file(&net_dir)?;

    if let Some(token) = args.positional().first() {
        return Err(format!(
            "Command line contains unexpected token '{token}', see bitcoind -h for a list of options."
        ));
    }

    // The default bitcoin.conf in the data directory must not be silently ignored.
    let base_conf = datadir.join(super::args::CONF_FILENAME);
    if base_conf.is_file() {
        if let Some(used) = &args.config_path {
            let same = std::fs::canonicalize(used).ok() == std::fs::canonicalize(&base_conf).ok();
            if !same && !args.get_bool("allowignoredconf", false) {
                let source = match args.get("conf") {
                    Some(c) => format!("command line argument \"-conf={c}\""),
                    None => format!("data directory \"{}\"", datadir.display()),
                };
                return Err(format!(
                    "Data directory \"{d}\" contains a \"bitcoin.conf\" file which is ignored, because a different configuration file \"{u}\" from {source} is being used instead. Possible ways to address this would be to:\n- Delete or rename the \"bitcoin.conf\" file in data directory \"{d}\".\n- Change datadir= or conf= options to specify one configuration file, not two, and use includeconf= to include any other configuration files.\n- Set allowignoredconf=1 option to treat this condition as a warning, not an error.",
                    d = datadir.display(),
                    u = used.display()
                ));
            }
        }
    }

    let unsuitable = args.unsuitable_section_only_args();
    if !unsuitable.is_empty() {
        return Err(unsuitable
            .iter()
            .map(|arg| format!("Config setting for {arg} only applied on regtest network when in [regtest] section."))
            .collect::<Vec<_>>()
            .join("\n"));
    }
    let mut init_warnings = args.unrecognized_sections();

    if args.get_bool("daemon", false) || args.get_bool("daemonwait", false) {
        return Err("-daemon is not supported by regtest-sim; run it in the foreground.".into());
    }

    // Pruning (Core's ApplyArgsManOptions for the block manager).
    let prune = args.get_int("prune", 0);
    if prune < 0 {
        return Err("Prune cannot be configured with a negative value.".into());
    }
    if prune > 1 && prune < MIN_PRUNE_MIB {
        return Err(format!(
            "Prune configured below the minimum of {MIN_PRUNE_MIB} MiB.  Please use a higher number."
        ));
    }
    let txindex = args.get_bool("txindex", false);
    if prune != 0 && txindex {
        return Err("Prune mode is incompatible with -txindex.".into());
    }

    let port_arg = |name: &str, default: u16| -> Result<u16, String> {
        match args.get(name) {
            None => Ok(default),
            Some(v) => match v.parse::<u16>() {
                Ok(p) if p != 0 => Ok(p),
                _ => Err(format!("Invalid port specified in -{name}: '{v}'")),
            },
        }
    };
    let rpc_port = port_arg("rpcport", DEFAULT_RPC_PORT)?;
    let p2p_port = port_arg("port", DEFAULT_P2P_PORT)?;

    let mut parse_log = std::mem::take(&mut args.log_lines);
    let allow_args = args.get_list("rpcallowip");
    let mut rpc_allow = Vec::new();
    for entry in &allow_args {
        match Subnet::parse(entry) {
            Some(s) => rpc_allow.push(s),
            None => {
                return Err(format!(
                    "Invalid -rpcallowip subnet specification: {entry}. Valid values are a single IP (e.g. 1.2.3.4), a network/netmask (e.g. 1.2.3.4/255.255.255.0), a network/CIDR (e.g. 1.2.3.4/24), all ipv4 (0.0.0.0/0), or all ipv6 (::/0). RFC4193 is allowed only if -cjdnsreachable=0."
                ))
            }
        }
    }
    let bind_args = args.get_list("rpcbind");
    let mut rpc_bind = Vec::new();
    if allow_args.is_empty() || bind_args.is_empty() {
        rpc_bind.push(("::1".to_string(), rpc_port));
        rpc_bind.push(("127.0.0.1".to_string(), rpc_port));
        if !allow_args.is_empty() {
            parse_log.push("WARNING: option -rpcallowip was specified without -rpcbind; this doesn't usually make sense".into());
        }
        if !bind_args.is_empty() {
            parse_log.push("WARNING: option -rpcbind was ignored because -rpcallowip was not specified, refusing to allow everyone to connect".into());
        }
    } else {
        for bind in &bind_args {
            rpc_bind.push(
                split_host_port(bind, rpc_port)
                    .ok_or_else(|| format!("Invalid port specified in -rpcbind: '{bind}'"))?,
            );
        }
    }

    let rpc_password = args.get("rpcpassword").filter(|p| !p.is_empty());
    let rpc_user = args.get("rpcuser");
    let rpc_auth = args.get_list("rpcauth");
    let cookie_file = if args.is_negated("rpccookiefile") {
        None
    } else {
        let name = args
            .get("rpccookiefile")
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| ".cookie".into());
        let path = PathBuf::from(name);
        Some(if path.is_absolute() {
            path
        } else {
            net_dir.join(path)
        })
    };

    let debug_log = if args.is_negated("debuglogfile") {
        None
    } else {
        let name = args
            .get("debuglogfile")
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "debug.log".into());
        let path = PathBuf::from(name);
        Some(if path.is_absolute() {
            path
        } else {
            net_dir.join(path)
        })
    };
    let pid_file = if args.is_negated("pid") {
        None
    } else {
        let name = args
            .get("pid")
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "bitcoind.pid".into());
        let path = PathBuf::from(name);
        Some(if path.is_absolute() {
            path
        } else {
            net_dir.join(path)
        })
    };

    let fee_arg = |name: &str, default: u64| -> Result<u64, String> {
        match args.get(name) {
            None => Ok(default),
            Some(v) => parse_money(&v)
                .map(|a| a.to_sat())
                .ok_or_else(|| format!("Invalid amount for -{name}=<amount>: '{v}'")),
        }
    };
    let mut policy = Policy {
        min_relay_feerate: fee_arg("minrelaytxfee", 100)?,
        incremental_relay_feerate: fee_arg("incrementalrelayfee", 100)?,
        dust_relay_feerate: fee_arg("dustrelayfee", 3000)?,
        max_mempool_bytes: u64::try_from(args.get_int("maxmempool", 300)).unwrap_or(0) * 1_000_000,
        require_standard: !args.get_bool("acceptnonstdtxn", false),
        permit_bare_multisig: args.get_bool("permitbaremultisig", true),
        ..Policy::default()
    };
    if !args.get_bool("datacarrier", true) {
        policy.max_datacarrier_bytes = None;
    } else if args.is_set("datacarriersize") {
        policy.max_datacarrier_bytes =
            Some(u64::try_from(args.get_int("datacarriersize", 100_000)).unwrap_or(0));
    }

    let ms_arg = |name: &str, default: i64| -> Result<Duration, String> {
        let v = args.get_int(name, default);
        u64::try_from(v)
            .map(Duration::from_millis)
            .map_err(|_| format!("-{name} must not be negative (got {v})"))
    };
    let interval = args.get_int("simblockinterval", 0);
    if interval < 0 {
        return Err(format!(
            "-simblockinterval must not be negative (got {interval})"
        ));
    }
    let upstream = upstream_settings(&args, &datadir, rpc_port)?;
    if upstream.is_some() && interval > 0 {
        return Err("-simblockinterval cannot be used with -simupstream: the upstream sim keeps the chain, mine there".into());
    }
    let mining_script = match args.get("simminingaddress") {
        None => default_mining_script(),
        Some(addr) => super::script::parse_regtest_address(&addr)
            .ok_or_else(|| format!("-simminingaddress: '{addr}' is not a regtest address"))?,
    };

    if args.is_set("includeconf") {
        init_warnings.push("-includeconf is not supported by regtest-sim".into());
    }
    let described_args = args.describe();

    Ok(Invocation::Run(Box::new(Settings {
        net_dir,
        config_path: args.config_path.clone(),
        rpc_port,
        rpc_bind,
        rpc_allow,
        rpc_user,
        rpc_password,
        rpc_auth,
        cookie_file,
        rpc_server_timeout: Duration::from_secs(
            u64::try_from(args.get_int("rpcservertimeout", 30))
                .unwrap_or(30)
                .max(1),
        ),
        p2p_port,
        print_to_console: args.get_bool("printtoconsole", !args.get_bool("daemon", false)),
        debug_log,
        pid_file,
        txindex,
        prune_mib: prune as u64,
        wallet_disabled: args.get_bool("disablewallet", false),
        persist_mempool: args.get_bool("persistmempool", true),
        max_tip_age: u64::try_from(args.get_int("maxtipage", 24 * 60 * 60)).unwrap_or(0),
        policy,
        uacomment: args.get_list("uacomment"),
        block_interval: (interval > 0).then(|| Duration::from_secs(interval as u64)),
        warmup: ms_arg("simwarmup", 500)?,
        stop_delay: ms_arg("simstopdelay", 0)?,
        mining_script,
        upstream,
        parse_log,
        init_warnings,
        described_args,
    })))
}

/// Where interval-mined coins go by default: P2WSH of `OP_TRUE`, spendable by anyone with the
/// witness `[51]` (the sim checks no scripts anyway).
pub fn default_mining_script() -> ScriptBuf {
    let op_true = ScriptBuf::from_bytes(vec![0x51]);
    ScriptBuf::new_p2wsh(&op_true.wscript_hash())
}

/// Core's `SplitHostPort` for `-rpcbind` values: "host", "host:port", "[v6]:port".
fn split_host_port(text: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok().filter(|p| *p != 0)?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match text.rsplit_once(':') {
        // More than one colon: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => Some((text.to_string(), default_port)),
        Some((host, port)) => Some((host.to_string(), port.parse().ok().filter(|p| *p != 0)?)),
        None => Some((text.to_string(), default_port)),
    }
}

fn help_text() -> String {
    format!(
        "{name} daemon version v{version} (regtest-sim {sim})\n\n\
regtest-sim is a stand-in for bitcoind in tests and demos: it speaks bitcoind's command line\n\
and JSON-RPC, keeps a real regtest block chain in its data directory, and simulates a UTXO set\n\
and mempool. It does NOT check scripts or signatures, has no P2P networking and only runs\n\
regtest.\n\n\
Usage: regtest-sim -regtest [options]\n\n\
Bitcoin Core options it honours:\n\
  -datadir=<dir> -conf=<file> -regtest -chain=regtest -rpcport=<port> -rpcbind=<addr>[:port]\n\
  -rpcallowip=<ip> -rpcuser=<user> -rpcpassword=<pw> -rpcauth=<userpw> -rpccookiefile=<loc>\n\
  -printtoconsole -debuglogfile=<file> -pid=<file> -prune=<n> -txindex -persistmempool\n\
  -minrelaytxfee=<amt> -incrementalrelayfee=<amt> -dustrelayfee=<amt> -maxmempool=<n>\n\
  -acceptnonstdtxn -datacarrier -datacarriersize=<n> -uacomment=<cmt> -allowignoredconf\n\
Other bitcoind options are accepted and have no effect.\n\n\
Simulator options:\n\
  -simblockinterval=<secs>  Mine a block every <secs> seconds (default: 0 = never)\n\
  -simwarmup=<ms>           Answer RPC with warm-up error -28 for this long at start (default: 500)\n\
  -simstopdelay=<ms>        Pretend the shutdown flush takes this long (default: 0)\n\
  -simminingaddress=<addr>  Where -simblockinterval coinbases go (default: P2WSH of OP_TRUE)\n\
  -simupstream=<host>:<port> Keep no chain: forward RPC to this regtest-sim (shared chain)\n\
  -simupstreamcookie=<file> The upstream's .cookie file (read at every request)\n\
  -simupstreamauth=<user>:<password> Or these credentials for the upstream\n",
        name = super::CLIENT_NAME,
        version = super::CLIENT_VERSION_STRING,
        sim = env!("CARGO_PKG_VERSION"),
    )
}

impl Settings {
    /// The path of a file in the regtest data directory.
    pub fn net_path(&self, name: impl AsRef<Path>) -> PathBuf {
        self.net_dir.join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_match_like_rpcallowip() {
        let s = Subnet::parse("127.0.0.1").unwrap();
        assert!(s.contains("127.0.0.1".parse().unwrap()));
        assert!(!s.contains("127.0.0.2".parse().unwrap()));
        let s = Subnet::parse("10.0.0.0/255.0.0.0").unwrap();
        assert!(s.contains("10.9.8.7".parse().unwrap()));
        assert!(Subnet::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Subnet::parse("1.2.3.4/33").is_none());
        assert!(Subnet::parse("1.2.3.4/255.0.255.0").is_none());
        assert!(Subnet::parse("::1")
            .unwrap()
            .contains("::1".parse().unwrap()));
    }

    #[test]
    fn bind_addresses_split_like_core() {
        assert_eq!(
            split_host_port("127.0.0.1", 5),
            Some(("127.0.0.1".into(), 5))
        );
        assert_eq!(
            split_host_port("127.0.0.1:7", 5),
            Some(("127.0.0.1".into(), 7))
        );
        assert_eq!(split_host_port("[::1]:7", 5), Some(("::1".into(), 7)));
        assert_eq!(split_host_port("::1", 5), Some(("::1".into(), 5)));
        assert_eq!(split_host_port("1.2.3.4:x", 5), None);
    }

    fn run(args: &[&str]) -> Result<Settings, String> {
        match from_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())? {
            Invocation::Run(s) => Ok(*s),
            Invocation::Print(_) => panic!("help"),
        }
    }

    #[test]
    fn only_regtest_runs() {
        let dir = tempfile::tempdir().unwrap();
        let d = format!("-datadir={}", dir.path().display());
        let err = run(&[&d]).unwrap_err();
        assert!(err.contains("only simulates regtest"), "{err}");
        let err = run(&[&d, "-testnet4"]).unwrap_err();
        assert!(err.contains("\"testnet4\""), "{err}");
        assert!(run(&[&d, "-regtest"]).is_ok());
        assert!(run(&[&d, "-chain=regtest"]).is_ok());
    }

    #[test]
    fn prune_and_txindex_errors_match_core() {
        let dir = tempfile::tempdir().unwrap();
        let d = format!("-datadir={}", dir.path().display());
        assert_eq!(
            run(&[&d, "-regtest", "-prune=100"]).unwrap_err(),
            "Prune configured below the minimum of 550 MiB.  Please use a higher number."
        );
        assert_eq!(
            run(&[&d, "-regtest", "-prune=550", "-txindex"]).unwrap_err(),
            "Prune mode is incompatible with -txindex."
        );
        assert_eq!(run(&[&d, "-regtest", "-prune=1"]).unwrap().prune_mib, 1);
    }

    #[test]
    fn missing_datadir_and_conf_are_errors() {
        assert_eq!(
            run(&["-regtest", "-datadir=/nonexistent/x"]).unwrap_err(),
            "Specified data directory \"/nonexistent/x\" does not exist."
        );
        let dir = tempfile::tempdir().unwrap();
        let d = format!("-datadir={}", dir.path().display());
        let err = run(&[&d, "-regtest", "-conf=nope.conf"]).unwrap_err();
        assert!(
            err.starts_with("Error reading configuration file: specified config file"),
            "{err}"
        );
        assert!(
            err.contains(&dir.path().join("nope.conf").display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn upstream_options_are_checked_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        let d = format!("-datadir={}", dir.path().display());
        let base = [d.as_str(), "-regtest", "-rpcport=18500"];
        let with = |extra: &[&str]| run(&[&base[..], extra].concat());

        assert_eq!(with(&[]).unwrap().upstream, None);
        let settings = with(&[
            "-simupstream=127.0.0.1:18443",
            "-simupstreamcookie=up/.cookie",
        ])
        .unwrap()
        .upstream
        .unwrap();
        assert_eq!(settings.address(), "127.0.0.1:18443");
        assert_eq!(
            settings.auth,
            UpstreamAuth::CookieFile(dir.path().join("up/.cookie")),
            "relative to the data directory"
        );
        let settings = with(&["-simupstream=[::1]", "-simupstreamauth=u:p:w"])
            .unwrap()
            .upstream
            .unwrap();
        assert_eq!((settings.host.as_str(), settings.port), ("::1", 18443));
        assert_eq!(settings.address(), "[::1]:18443");
        assert_eq!(settings.auth, UpstreamAuth::UserPassword("u:p:w".into()));
        assert_eq!(
            format!("{:?}", settings.auth),
            "UserPassword(****)",
            "Debug hides the password"
        );

        for (extra, error) in [
            (
                &["-simupstream=127.0.0.1:18443"][..],
                "-simupstream needs -simupstreamcookie",
            ),
            (&["-simupstreamauth=u:p"][..], "need -simupstream="),
            (
                &[
                    "-simupstream=h:1",
                    "-simupstreamauth=u:p",
                    "-simupstreamcookie=c",
                ][..],
                "cannot be used together",
            ),
            (
                &["-simupstream=h:1", "-simupstreamauth=nopassword"][..],
                "<user>:<password>",
            ),
            (
                &["-simupstream=h:x", "-simupstreamauth=u:p"][..],
                "Invalid -simupstream address",
            ),
            (
                &["-simupstream=localhost:18500", "-simupstreamauth=u:p"][..],
                "this sim's own RPC port",
            ),
            (
                &[
                    "-simupstream=h:1",
                    "-simupstreamauth=u:p",
                    "-simblockinterval=5",
                ][..],
                "-simblockinterval cannot be used with -simupstream",
            ),
        ] {
            let err = with(extra).unwrap_err();
            assert!(err.contains(error), "{extra:?}: {err}");
        }
    }

    #[test]
    fn settings_json_adds_options_unless_nosettings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bitcoin.conf"),
            "regtest=1\n[regtest]\nrpcbind=127.0.0.1\nrpcallowip=127.0.0.1\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("regtest")).unwrap();
        std::fs::write(
            dir.path().join("regtest/settings.json"),
            r#"{"rpcbind": ["0.0.0.0"], "rpcallowip": "0.0.0.0/0", "txindex": true}"#,
        )
        .unwrap();
        let d = format!("-datadir={}", dir.path().display());
        // As in Core, settings.json's list values come before bitcoin.conf's.
        let settings = run(&[&d]).unwrap();
        let hosts: Vec<&str> = settings.rpc_bind.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(hosts, ["0.0.0.0", "127.0.0.1"]);
        assert!(settings.txindex);
        let settings = run(&[&d, "-nosettings"]).unwrap();
        let hosts: Vec<&str> = settings.rpc_bind.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(hosts, ["127.0.0.1"]);
        assert!(!settings.txindex);

        std::fs::write(dir.path().join("regtest/settings.json"), "{not json").unwrap();
        let err = run(&[&d]).unwrap_err();
        assert!(err.contains("Unable to parse settings file"), "{err}");
        assert!(run(&[&d, "-nosettings"]).is_ok());
    }

    #[test]
    fn network_only_option_at_the_top_is_an_error_on_regtest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bitcoin.conf"), "regtest=1\nrpcport=1234\n").unwrap();
        let d = format!("-datadir={}", dir.path().display());
        assert_eq!(
            run(&[&d]).unwrap_err(),
            "Config setting for -rpcport only applied on regtest network when in [regtest] section."
        );
    }
}
