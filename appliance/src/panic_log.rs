//! What a panic leaves in the journal: where it happened and in which thread, never its
//! message. A panic's payload can carry whatever the failing code held — a recovery word
//! that broke a parser, a password, a pairing URI — and the default hook prints it to
//! stderr, which is the journal on the box.
//!
//! A panic in a task or an HTTP worker is caught (tokio reports it as a `JoinError`,
//! actix restarts the worker), so the supervisor goes on; this line is how the bug is
//! found later.

/// Replaces the default panic hook with one that logs only the location and the thread,
/// through `tracing` (the journal). Call once, after logging is set up.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        let location = info
            .location()
            .map(|at| format!("{}:{}:{}", at.file(), at.line(), at.column()))
            .unwrap_or_else(|| "an unknown place".into());
        tracing::error!(
            "bug: thread '{thread}' panicked at {location} (the panic's message is not \
             logged: it may hold a secret); please report this with the plugnode version"
        );
    }));
}

#[cfg(test)]
mod tests {
    /// Set in the child process that panics under the hook.
    const CHILD: &str = "PLUGNODE_PANIC_LOG_CHILD";
    const SECRET: &str = "zoo zoo zoo wrong";

    /// Runs the panic in a child process: a hook is global, and in this test binary it
    /// would swallow the messages of every other failing test.
    #[test]
    fn a_panic_is_logged_with_place_and_thread_but_not_its_message() {
        if std::env::var_os(CHILD).is_some() {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .init();
            super::install();
            let _ = std::thread::Builder::new()
                .name("web-worker".into())
                .spawn(|| panic!("the words were {SECRET}"))
                .unwrap()
                .join();
            return;
        }
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "panic_log::tests::a_panic_is_logged_with_place_and_thread_but_not_its_message",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{log}");
        assert!(
            log.contains("thread 'web-worker' panicked at appliance/src/panic_log.rs:"),
            "{log}"
        );
        assert!(!log.contains(SECRET), "{log}");
    }
}
