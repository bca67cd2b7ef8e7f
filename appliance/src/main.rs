//! `plugnode`: the supervisor daemon and its command line.

use clap::{Parser, Subcommand};
use plugnode::config::{Config, DEFAULT_CONFIG_PATH};
use plugnode::shutdown::{Shutdown, ShutdownReason, EXIT_POWER_OFF, EXIT_UPDATE};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "plugnode",
    version,
    about = "Bitcoin + Lightning node appliance supervisor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance from the config file (what the box runs at boot).
    Run {
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Check a config file and print the settings plugnode would use.
    CheckConfig {
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Run the whole appliance on this computer with a simulated bitcoind.
    #[cfg(feature = "demo")]
    Demo(plugnode::demo::DemoArgs),
}

/// Exit code for a config that cannot be used (nothing was started or changed).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    #[cfg(feature = "demo")]
    let started = std::time::Instant::now();
    // Multi-call: started through a symlink named `regtest-sim` (the demo does this),
    // plugnode is the bitcoind simulator.
    #[cfg(feature = "demo")]
    {
        let args: Vec<String> = std::env::args().collect();
        let invoked_as = args
            .first()
            .and_then(|arg0| Path::new(arg0).file_name())
            .and_then(|name| name.to_str());
        if invoked_as == Some("regtest-sim") {
            let code = plugnode_testkit::sim::main_with_args(args);
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
    }

    // Everything plugnode writes is its own alone unless it says otherwise (the unit sets
    // UMask=0077 too; a laptop's shell usually has 022).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config: path } => match load_config(&path) {
            Ok(config) => {
                println!("# {}: OK. The settings plugnode will use:", path.display());
                print!("{}", toml::to_string(&config).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run { config: path } => {
            let config = match load_config(&path) {
                Ok(config) => config,
                Err(code) => return code,
            };
            run_async(PowerOff::ExitCode, |shutdown| {
                run_box(path, config, shutdown)
            })
        }
        #[cfg(feature = "demo")]
        Command::Demo(args) => run_async(PowerOff::JustStop, |shutdown| async move {
            plugnode::demo::run(args, shutdown, started).await
        }),
    }
}

/// The box: starts the appliance; when it cannot start, diagnostic mode until Retry (which
/// reads the config again) or a stop. Never exits into a restart loop that would only
/// repeat the failure.
async fn run_box(path: PathBuf, mut config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    use plugnode::app::{Appliance, Face};
    use plugnode::diagnostic::{self, Next};
    let face = Face::start(&config, &shutdown, false);
    let mut attempt = 0;
    loop {
        let err = match Appliance::start(&config, shutdown.clone(), &face).await {
            Ok(appliance) => {
                appliance.run_until_shutdown().await;
                return Ok(());
            }
            Err(err) => err,
        };
        attempt += 1;
        if diagnostic::run(&config, &face, &err, attempt, &shutdown).await == Next::Stop {
            return Ok(());
        }
        // A config fixed meanwhile is used; a broken one keeps the last good one.
        match Config::load(&path).and_then(|c| c.validate().map(|()| c)) {
            Ok(fresh) => config = fresh,
            Err(err) => tracing::warn!(
                "the config still has a problem ({err}); retrying with the last good one"
            ),
        }
    }
}

/// Loads and validates the config; on failure prints why and returns the exit code.
fn load_config(path: &Path) -> Result<Config, ExitCode> {
    let result = Config::load(path).and_then(|config| config.validate().map(|()| config));
    result.map_err(|err| {
        eprintln!("plugnode: {err}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// What "power off" from the web page or the device means in a mode.
enum PowerOff {
    /// On the box: exit with EXIT_POWER_OFF so the service unit powers off.
    ExitCode,
    /// On a laptop (demo): stop, and say the box would be off now.
    #[cfg_attr(not(feature = "demo"), allow(dead_code))]
    JustStop,
}

/// Sets up logging and the runtime, wires Ctrl-C and SIGTERM to the shutdown signal, and
/// runs `body` to its end.
fn run_async<F, Fut>(power_off: PowerOff, body: F) -> ExitCode
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    return_big_allocations_to_the_system();
    plugnode::logging::init();
    // From here on a panic logs where it happened, never its message (it may hold a secret).
    plugnode::panic_log::install();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("plugnode")
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("plugnode: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = Shutdown::new();
    let result = runtime.block_on(async {
        tokio::spawn(stop_on_signals(shutdown.clone()));
        body(shutdown.clone()).await
    });
    match result {
        Ok(()) if shutdown.reason() == Some(ShutdownReason::PowerOff) => match power_off {
            PowerOff::ExitCode => ExitCode::from(EXIT_POWER_OFF),
            PowerOff::JustStop => {
                println!("The box would power off now.");
                ExitCode::SUCCESS
            }
        },
        Ok(()) if shutdown.reason() == Some(ShutdownReason::Update) => match power_off {
            PowerOff::ExitCode => ExitCode::from(EXIT_UPDATE),
            PowerOff::JustStop => ExitCode::SUCCESS,
        },
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("plugnode: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn stop_on_signals(shutdown: Shutdown) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot listen for SIGINT/SIGTERM; stop plugnode from the web page");
        return;
    };
    loop {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        if shutdown.is_triggered() {
            tracing::warn!("{name} again: still stopping in order (bitcoind may be flushing)");
        } else {
            tracing::info!("{name}: shutting down");
            shutdown.trigger();
        }
    }
}

/// glibc raises its mmap threshold after the first large allocation is freed, and then
/// keeps later large blocks in the heap: each login's 19 MiB of password-hashing scratch
/// stayed resident (measured: 25 MiB idle → 82 MiB after three logins). A fixed threshold
/// keeps large blocks in mmap, returned to the system when freed.
fn return_big_allocations_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread runs.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
