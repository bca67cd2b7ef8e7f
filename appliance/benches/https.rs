//! HTTPS figures (issue 10), on one `plugnode run` box on loopback. Prints them; asserts
//! no timings.
//!
//! 1. **`GET /api/status` under load**: `PLUGNODE_BENCH_CONNECTIONS` (default 50)
//!    keep-alive connections, each sending the next request when the answer arrives, for
//!    `PLUGNODE_BENCH_SECS` (default 10) per run; plain HTTP (the loopback listener) and
//!    HTTPS (TLS 1.3, P-256 certificate from the box's CA) side by side, alternating
//!    HTTP, HTTPS, HTTP, HTTPS so load from other programs falls on both alike. Latency
//!    runs from writing the request to the last byte of the answer. The client (tokio +
//!    tokio-rustls, in this process) shares the machine's cores with the box.
//! 2. **TLS handshakes**: `PLUGNODE_BENCH_HANDSHAKES` (default 500) in sequence, each on a
//!    new TCP connection (the connect is not counted): *full* (a client with resumption
//!    off) and *resumed* (one that keeps the box's session tickets).
//! 3. **Memory**: the supervisor's `VmRSS` idle, its highest sample (every 100 ms) during
//!    each load run, and `VmHWM` at the end. The box runs without the Lightning node, like
//!    the demo's idle figure in the README.
//!
//! ```sh
//! nice -n 10 cargo bench -p plugnode --bench https --no-run
//! cargo bench -p plugnode --bench https              # all three
//! cargo bench -p plugnode --bench https -- handshake # only figure 2
//! ```

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::tls::download_ca;
use common::{http, wait_for, Plugnode, TestConfig, TIMEOUT};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scheme {
    Http,
    Https,
}

fn main() {
    let wanted = Wanted::from_args();
    print_machine("plugnode HTTPS figures");
    let work = tempfile::tempdir().unwrap();
    let config = TestConfig::new(work.path());
    let node = Plugnode::start(&config);
    wait_for("the box's web page", TIMEOUT, || {
        http(node.web, "GET", "/api/health", None).filter(|(code, _)| *code == 200)
    });
    let token = node.token().expect("the bench logs in");
    let (_, ca) = download_ca(node.web);
    let client = common::tls::client_trusting(&ca);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Let the start-up settle before the idle figure.
    std::thread::sleep(Duration::from_secs(3));
    let idle = resident_kib(node.pid());
    println!(
        "  box:       plugnode run, no Lightning node; plain http://{}, https://{}",
        node.web, node.https
    );

    let mut peaks = Vec::new();
    if wanted.has("load") {
        let connections = env_usize("PLUGNODE_BENCH_CONNECTIONS", 50);
        let secs = env_usize("PLUGNODE_BENCH_SECS", 10) as u64;
        println!(
            "\n1. GET /api/status, {connections} keep-alive connections, {secs} s a run, runs alternating"
        );
        let mut results: Vec<(Scheme, Vec<Duration>, Duration, u64)> = Vec::new();
        for scheme in [Scheme::Http, Scheme::Https, Scheme::Http, Scheme::Https] {
            let address = match scheme {
                Scheme::Http => node.web,
                Scheme::Https => node.https,
            };
            let sampler = Sampler::start(node.pid());
            let (latencies, wall) = runtime.block_on(load(
                scheme,
                address,
                client.clone(),
                &token,
                connections,
                Duration::from_secs(secs),
            ));
            let peak = sampler.stop();
            peaks.push((scheme, peak));
            results.push((scheme, latencies, wall, peak));
        }
        println!(
            "   {:<7} {:>10} {:>9} {:>9} {:>9} {:>14}",
            "", "requests/s", "p50 ms", "p99 ms", "max ms", "box RSS peak"
        );
        for scheme in [Scheme::Http, Scheme::Https] {
            let runs: Vec<_> = results.iter().filter(|r| r.0 == scheme).collect();
            let latencies: Vec<Duration> = runs.iter().flat_map(|r| r.1.iter().copied()).collect();
            let wall: Duration = runs.iter().map(|r| r.2).sum();
            let peak = runs.iter().map(|r| r.3).max().unwrap_or(0);
            let summary = Summary::of(&latencies, wall);
            println!(
                "   {:<7} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>10.1} MiB   ({} requests)",
                format!("{scheme:?}").to_uppercase(),
                summary.per_sec,
                ms(summary.p50),
                ms(summary.p99),
                ms(summary.max),
                mib(peak),
                latencies.len()
            );
        }
    }

    if wanted.has("handshake") {
        let count = env_usize("PLUGNODE_BENCH_HANDSHAKES", 500);
        println!(
            "\n2. TLS handshakes, {count} in sequence on new connections (TCP connect not counted)"
        );
        let mut full_config = (*client).clone();
        full_config.resumption = rustls::client::Resumption::disabled();
        // Its own session store, warmed by one handshake that is not counted.
        let mut resuming = (*client).clone();
        resuming.resumption = rustls::client::Resumption::in_memory_sessions(256);
        let resuming = Arc::new(resuming);
        runtime.block_on(handshakes(resuming.clone(), node.https, 1));
        let full = runtime.block_on(handshakes(Arc::new(full_config), node.https, count));
        let resumed = runtime.block_on(handshakes(resuming, node.https, count));
        println!(
            "   {:<8} {:>9} {:>9} {:>9}",
            "", "p50 ms", "p99 ms", "resumed"
        );
        for (name, runs) in [("full", full), ("resumed", resumed)] {
            let times: Vec<Duration> = runs.iter().map(|(time, _)| *time).collect();
            let summary = Summary::of(&times, Duration::ZERO);
            println!(
                "   {:<8} {:>9.3} {:>9.3} {:>5}/{}",
                name,
                ms(summary.p50),
                ms(summary.p99),
                runs.iter().filter(|(_, resumed)| *resumed).count(),
                runs.len()
            );
        }
    }

    println!("\n3. supervisor memory (VmRSS)");
    println!(
        "   idle, before any request           {:>6.1} MiB",
        mib(idle)
    );
    for (scheme, peak) in &peaks {
        println!(
            "   highest sample during a {:<5} run   {:>6.1} MiB",
            format!("{scheme:?}").to_uppercase(),
            mib(*peak)
        );
    }
    println!(
        "   after the runs                      {:>6.1} MiB (VmHWM {:.1} MiB)",
        mib(resident_kib(node.pid())),
        mib(status_field(node.pid(), "VmHWM:"))
    );
    drop(runtime);
    drop(node);
    finish(work);
}

/// `connections` clients asking for the status one request after the other until
/// `length` has passed; the latencies, and the time they ran.
async fn load(
    scheme: Scheme,
    address: SocketAddr,
    client: Arc<rustls::ClientConfig>,
    token: &str,
    connections: usize,
    length: Duration,
) -> (Vec<Duration>, Duration) {
    let request = format!(
        "GET /api/status HTTP/1.1\r\nHost: plugnode.local\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .into_bytes();
    // Connect (and shake hands) first: the figure is the requests.
    let mut streams = Vec::new();
    for _ in 0..connections {
        let tcp = TcpStream::connect(address).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let stream: Box<dyn Stream> = match scheme {
            Scheme::Http => Box::new(tcp),
            Scheme::Https => {
                let connector = tokio_rustls::TlsConnector::from(client.clone());
                let name = ServerName::try_from("plugnode.local").unwrap();
                Box::new(connector.connect(name, tcp).await.unwrap())
            }
        };
        streams.push(BufReader::new(stream));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let request = request.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    stream.get_mut().write_all(&request).await.unwrap();
                    read_answer(&mut stream).await;
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    (all, started.elapsed())
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Reads one answer (head and a Content-Length body) and checks it is a 200.
async fn read_answer(stream: &mut BufReader<Box<dyn Stream>>) {
    let mut line = String::new();
    stream.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line:?}");
    let mut length = 0usize;
    loop {
        line.clear();
        stream.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
}

/// `count` handshakes on new connections: how long each took and whether it was resumed.
async fn handshakes(
    client: Arc<rustls::ClientConfig>,
    address: SocketAddr,
    count: usize,
) -> Vec<(Duration, bool)> {
    let connector = tokio_rustls::TlsConnector::from(client);
    let mut runs = Vec::new();
    for _ in 0..count {
        let tcp = TcpStream::connect(address).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let started = Instant::now();
        let name = ServerName::try_from("plugnode.local").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let took = started.elapsed();
        let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        runs.push((took, resumed));
        // TLS 1.3 tickets arrive after the handshake: read them (a request makes the box
        // answer and close) before the next connection wants one.
        let _ = tls.write_all(b"GET /api/health HTTP/1.0\r\n\r\n").await;
        let mut sink = Vec::new();
        let _ = tls.read_to_end(&mut sink).await;
    }
    runs
}

/// The highest `VmRSS` of `pid`, sampled every 100 ms until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Sampler {
    fn start(pid: i32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut peak = 0;
                while !stop.load(Ordering::Relaxed) {
                    peak = peak.max(resident_kib(pid));
                    std::thread::sleep(Duration::from_millis(100));
                }
                peak
            }
        });
        Sampler { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn resident_kib(pid: i32) -> u64 {
    status_field(pid, "VmRSS:")
}

fn status_field(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
