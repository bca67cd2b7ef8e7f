//! `bitcoin.conf` as plugnode writes it at every start, and the command line bitcoind is
//! started with.

use super::credentials::RpcCredentials;
use super::sizing::Resources;
use crate::config::Network;
use std::path::Path;

/// bitcoind's arguments: its data dir, plugnode's `bitcoin.conf`, then the user's extra
/// arguments (already checked by the config).
pub fn command_line(datadir: &Path, conf_path: &Path, extra_args: &[String]) -> Vec<String> {
    let mut args = vec![
        format!("-datadir={}", datadir.display()),
        format!("-conf={}", conf_path.display()),
        // bitcoind also reads `settings.json` in its data dir (values set at runtime, e.g.
        // by its GUI or an RPC), and would take an `rpcbind` or `rpcallowip` from it behind
        // plugnode's back: only plugnode's bitcoin.conf counts.
        "-nosettings".into(),
    ];
    args.extend(extra_args.iter().cloned());
    args
}

/// Everything that goes into `bitcoin.conf`.
pub struct ConfSettings<'a> {
    pub network: Network,
    pub rpc_port: u16,
    pub p2p_port: u16,
    pub resources: Resources,
    pub credentials: &'a RpcCredentials,
}

/// Renders `bitcoin.conf`. Network-only options (ports, RPC binding) go into the network's
/// section, because bitcoind applies them outside a section to mainnet only.
pub fn render(settings: &ConfSettings) -> String {
    let ConfSettings {
        network,
        rpc_port,
        p2p_port,
        resources,
        credentials,
    } = settings;
    let mut conf = String::new();
    let mut line = |text: String| {
        conf.push_str(&text);
        conf.push('\n');
    };
    line("# Written by plugnode at every start: edit /etc/plugnode/plugnode.toml instead.".into());
    line(format!("chain={}", network.chain_name()));
    line("server=1".into());
    // The on-chain wallet is the Lightning node's; bitcoind's would only cost memory.
    line("disablewallet=1".into());
    // plugnode shows bitcoind's last lines when it fails.
    line("printtoconsole=1".into());
    line(format!("prune={}", resources.prune_mib));
    line(format!("dbcache={}", resources.dbcache_mib));
    line(format!("maxmempool={}", resources.maxmempool_mib));
    line(String::new());
    line(format!("[{}]", network.conf_section()));
    line("rpcbind=127.0.0.1".into());
    line("rpcallowip=127.0.0.1".into());
    line(format!("rpcport={rpc_port}"));
    line(format!("port={p2p_port}"));
    line(format!("rpcauth={}", credentials.supervisor.rpcauth()));
    line(format!("rpcauth={}", credentials.lightning.rpcauth()));
    conf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitcoind::credentials::RpcUser;
    use crate::secret::Secret;

    fn credentials() -> RpcCredentials {
        let user = |name: &str| RpcUser {
            name: name.into(),
            password: Secret::new(format!("{name}-password")),
        };
        RpcCredentials {
            supervisor: user("plugnode"),
            lightning: user("lightning"),
        }
    }

    #[test]
    fn regtest_conf_binds_loopback_in_its_section_and_holds_no_password() {
        let credentials = credentials();
        let conf = render(&ConfSettings {
            network: Network::Regtest,
            rpc_port: 18443,
            p2p_port: 18444,
            resources: Resources {
                prune_mib: 0,
                dbcache_mib: 300,
                maxmempool_mib: 150,
            },
            credentials: &credentials,
        });
        let (global, section) = conf.split_once("[regtest]\n").unwrap();
        for needed in [
            "chain=regtest",
            "server=1",
            "disablewallet=1",
            "prune=0",
            "dbcache=300",
            "maxmempool=150",
        ] {
            assert!(global.lines().any(|l| l == needed), "{needed} in\n{conf}");
        }
        for needed in [
            "rpcbind=127.0.0.1",
            "rpcallowip=127.0.0.1",
            "rpcport=18443",
            "port=18444",
        ] {
            assert!(section.lines().any(|l| l == needed), "{needed} in\n{conf}");
        }
        assert_eq!(section.matches("rpcauth=").count(), 2);
        assert!(section.contains("rpcauth=plugnode:"));
        assert!(section.contains("rpcauth=lightning:"));
        assert!(!conf.contains("password"), "no password in bitcoin.conf");
    }

    #[test]
    fn bitcoind_reads_only_plugnodes_conf() {
        let args = command_line(
            Path::new("/data/bitcoind"),
            Path::new("/data/bitcoind/bitcoin.conf"),
            &["-maxconnections=20".into()],
        );
        assert_eq!(
            args,
            [
                "-datadir=/data/bitcoind",
                "-conf=/data/bitcoind/bitcoin.conf",
                "-nosettings",
                "-maxconnections=20"
            ]
        );
    }

    #[test]
    fn mainnet_uses_the_main_section() {
        let credentials = credentials();
        let conf = render(&ConfSettings {
            network: Network::Mainnet,
            rpc_port: 8332,
            p2p_port: 8333,
            resources: Resources {
                prune_mib: 10_000,
                dbcache_mib: 512,
                maxmempool_mib: 300,
            },
            credentials: &credentials,
        });
        assert!(conf.contains("chain=main\n"));
        assert!(conf.contains("[main]\nrpcbind=127.0.0.1"));
        assert!(conf.contains("prune=10000"));
    }
}
