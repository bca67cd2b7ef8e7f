# Sourced by image/smoke-test.sh and image/update-test.sh: what both tests do around the VM.
#
#   harness_begin NAME KEPT   makes the work dir $work (plugnode-NAME.XXXXXX under $TMPDIR
#                             or /var/tmp) and arms the clean-up: QEMU ($qemu_pid, set it
#                             when QEMU starts) is killed, the host's chain and peer
#                             (test/lightning.py in $work/host) are stopped, and the work dir
#                             is removed unless a check failed or KEEP is set; KEPT says what
#                             is in it then.
#   say / ok / fail MESSAGE   progress, a passed check, a failed one (it prints the last
#                             lines of the newest serial console log and exits 1).
#   free_port                 a free TCP port on 127.0.0.1.

harness_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
started=$SECONDS

say() { echo "== [$((SECONDS - started)) s] $*"; }
ok() { echo "   ok: $*"; }

harness_begin() { # name, what the kept work dir holds
    work=$(mktemp -d "${TMPDIR:-/var/tmp}/plugnode-$1.XXXXXX")
    harness_kept=$2
    qemu_pid=""
    failed=0
    trap harness_finish EXIT
}

harness_finish() {
    if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    python3 "$harness_dir/lightning.py" stop "$work/host" || true
    if ((failed)) || [[ -n ${KEEP:-} ]]; then
        echo "   work dir kept: $work ($harness_kept)"
    else
        rm -rf "$work"
    fi
}

fail() {
    failed=1
    echo "FAIL: $*" >&2
    local log
    log=$(ls -t "$work"/console*.log 2>/dev/null | head -n 1)
    if [[ -n $log ]]; then
        echo "---- last lines of $(basename "$log") ----" >&2
        tail -n 40 "$log" | tr -d '\r' >&2
    fi
    exit 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
