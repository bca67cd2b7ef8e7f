//! Tasks that must run until the box stops: the bitcoind supervisor, the Lightning node,
//! the backup service and the web server. A panic in one of them used to go unnoticed
//! (tokio keeps a task's panic in its join handle, and nobody looked): the box then ran
//! on without it, or with bitcoind left to its parent-death signal. Now the end is named
//! in the status (an alert), and the appliance stops in order when it sees one.

use crate::status::StatusHandle;
use std::future::Future;
use tokio::task::JoinHandle;
use tracing::error;

/// Spawns `future` as the essential task `name`. The returned handle ends when the task
/// does and never carries a panic: awaiting it is how a stop waits for the task.
pub fn spawn<F>(name: &'static str, status: StatusHandle, future: F) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let task = tokio::spawn(future);
    tokio::spawn(async move {
        if let Err(err) = task.await {
            if err.is_panic() {
                // The panic hook logged where; the payload is not repeated (it may hold a
                // secret).
                error!("plugnode's {name} failed (a bug): stopping the box in order");
                report_stopped(&status, name);
            }
        }
    })
}

/// Records that plugnode's `name` stopped while it should run.
pub fn report_stopped(status: &StatusHandle, name: &str) {
    status.update(|s| {
        if !s.system.stopped_services.iter().any(|n| n == name) {
            s.system.stopped_services.push(name.to_string());
        }
    });
}

/// Triggers `shutdown` as soon as the status names a stopped essential task.
pub async fn stop_when_one_stops(status: StatusHandle, shutdown: crate::shutdown::Shutdown) {
    let mut updates = status.subscribe();
    tokio::select! {
        seen = updates.wait_for(|s| !s.system.stopped_services.is_empty()) => {
            if seen.is_ok() {
                shutdown.trigger();
            }
        }
        _ = shutdown.wait() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::Shutdown;

    #[tokio::test]
    async fn a_panicking_essential_task_is_named_and_stops_the_box() {
        let status = StatusHandle::new();
        let shutdown = Shutdown::new();
        let watcher = tokio::spawn(stop_when_one_stops(status.clone(), shutdown.clone()));
        let task = spawn("Lightning node", status.clone(), async {
            panic!("a bug");
        });
        task.await.expect("the wrapper never carries the panic");
        watcher.await.unwrap();
        assert!(shutdown.is_triggered());
        let snapshot = status.snapshot();
        assert_eq!(snapshot.system.stopped_services, ["Lightning node"]);
        let alert = &snapshot.alerts()[0];
        assert_eq!(alert.kind, crate::status::AlertKind::ServiceStopped);
        assert!(
            alert.message.contains("Lightning node"),
            "{}",
            alert.message
        );
    }

    #[tokio::test]
    async fn an_essential_task_that_ends_normally_is_no_alert() {
        let status = StatusHandle::new();
        spawn("backup", status.clone(), async {}).await.unwrap();
        assert!(status.snapshot().system.stopped_services.is_empty());
    }
}
