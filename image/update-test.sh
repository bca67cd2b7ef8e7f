#!/usr/bin/env bash
# The A/B update test: the test image in QEMU (`-M virt`), updated to the next version and
# then to a deliberately broken one, with the harness playing the Raspberry Pi firmware
# between boots (image/qemu-firmware.sh says exactly what it emulates and what not).
#
#   1. boot the test image (version N, slot A);
#   2. upload the bundle of version N+1 (same code, another version) and install it; the
#      box reboots with the one-shot tryboot flag into slot B;
#   3. on B, the new version is marked good (by plugnode; in MODE=helper by the harness):
#      autoboot.txt's [all] now names B, and it stays there;
#   4. upload a broken bundle (N+2: plugnode exits at start) and install it: the box
#      tryboots into slot A, plugnode fails, systemd gives up on it (OnFailure=), the root
#      side records why and reboots plainly: the firmware starts B (N+1) again, and the
#      box reports the failed update with its reason.
# Throughout, a Lightning channel: the chain and a peer run on the host
# (image/test/lightning.py; the test image's bitcoind forwards to that chain). After the
# first boot the box opens a channel to the peer and pays each way; after the update and
# again after the rollback the same channel must be usable, the box's side of it what it
# was, and a payment each way must go through.
#
#   image/update-test.sh [IMAGE]     default: image/out/plugnode-test.img
#       (image/build.sh --profile test). The N+1 and broken bundles are made from the same
#       build when missing (image/build.sh --skip-cross-build --bundle-only; root needed).
#   MODE=api (default)   through plugnode's API, as the page does: POST
#                        /api/system/update/bundle, POST /api/system/update/install, GET
#                        /api/system/update; plugnode marks the new version good.
#   MODE=helper          without plugnode's update API: the harness logs in over SSH
#                        (a key dropped on the boot partition, as a user would) and talks to
#                        the update helper's socket as plugnode would (install, reboot
#                        "0 tryboot", mark-good). The rollback in step 4 is the root side's
#                        alone in both modes.
# KEEP=1 keeps the work dir (console logs of every boot, the disk). Prints figures: bundle
# size (and xz of it), seconds from "install" to "updated", seconds of the rollback.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=qemu-firmware.sh
. "$here/qemu-firmware.sh"
# shellcheck source=test/harness.sh
. "$here/test/harness.sh"
img="${1:-$here/out/plugnode-test.img}"
MODE=${MODE:-api}
[[ $MODE == api || $MODE == helper ]] || { echo "update-test.sh: MODE is api or helper" >&2; exit 2; }
password_file="$here/test/web-password"
BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
DISK_MIB=16384

[[ -f $img ]] || { echo "update-test.sh: no image $img; build it with: image/build.sh --profile test" >&2; exit 2; }
for tool in qemu-system-aarch64 mcopy mtype sfdisk curl python3 unsquashfs xz; do
    command -v "$tool" >/dev/null || { echo "update-test.sh: $tool is missing" >&2; exit 2; }
done
password=$(cat "$password_file")

harness_begin update "console-N.log of each boot, disk.img; host/: the chain's and the peer's logs"

# --- the bundles: N+1 and a broken N+2 of the same build -----------------------------------
out=$(dirname "$img")
name=$(basename "$img" .img)
[[ -f $out/$name.raucb ]] || fail "no $out/$name.raucb beside the image (image/build.sh makes both)"
release_of() { unsquashfs -cat "$1" plugnode-release.json 2>/dev/null; }
json_of() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval("d" + sys.argv[2]))' "$@"; }
version_n=$(json_of "$(release_of "$out/$name.raucb")" '["version"]')
bump() { python3 -c 'import re,sys; v=sys.argv[1]; m=re.match(r"(.*?)(\d+)([^\d]*)$", v); print(m.group(1) + str(int(m.group(2)) + 1) + m.group(3))' "$1"; }
version_next=${NEXT_VERSION:-$(bump "$version_n")}
version_broken=$(bump "$version_next")
bundle_next="$out/$name-$version_next.raucb"
bundle_broken="$out/$name-$version_broken-broken.raucb"
if [[ ! -f $bundle_next || $bundle_next -ot $img ]]; then
    say "making the $version_next bundle (same build, another version)"
    nice -n 19 "$here/build.sh" --profile test --skip-cross-build --bundle-only --version "$version_next" --out "$out" >"$work/build-next.log" 2>&1 ||
        fail "image/build.sh --version $version_next: $(tail -5 "$work/build-next.log")"
fi
if [[ ! -f $bundle_broken || $bundle_broken -ot $img ]]; then
    say "making the broken $version_broken bundle (plugnode exits at start)"
    nice -n 19 "$here/build.sh" --profile test --skip-cross-build --broken-plugnode --version "$version_broken" --out "$out" >"$work/build-broken.log" 2>&1 ||
        fail "image/build.sh --broken-plugnode: $(tail -5 "$work/build-broken.log")"
fi
bundle_bytes=$(stat -c %s "$bundle_next")
bundle_xz_bytes=$(xz -T2 -6 -c "$bundle_next" | wc -c)
say "bundles: $version_n (image) → $version_next ($((bundle_bytes / 1048576)) MiB, xz $((bundle_xz_bytes / 1048576)) MiB) → $version_broken (broken)"

# --- the chain and the Lightning peer, on the host -------------------------------------------
say "starting the chain and a Lightning peer on the host"
python3 "$here/test/lightning.py" start "$work/host" || fail "could not start the chain and the peer on the host (logs in $work/host)"
# The channel's steps (lightning.py open / pay) against the box's HTTPS API.
channel() { # step [when]
    python3 "$here/test/lightning.py" "$1" "$work/host" "$secure" "$work/ca.crt" "$password" "${@:2}" ||
        fail "the Lightning channel ($1${2:+ $2}); the peer's log: $work/host/peer.log"
}

# --- the card and the ports ---------------------------------------------------------------
cp --sparse=always "$img" "$work/disk.img"
truncate -s ${DISK_MIB}M "$work/disk.img"
port=$(free_port)
tls_port=$(free_port)
ssh_port=$(free_port)
base="http://127.0.0.1:$port"
secure="https://127.0.0.1:$tls_port"
forwards="hostfwd=tcp:127.0.0.1:$port-:80,hostfwd=tcp:127.0.0.1:$tls_port-:443,hostfwd=tcp:127.0.0.1:$ssh_port-:22"
if [[ $MODE == helper ]]; then
    # SSH on, as a user turns it on: `ssh` and `authorized_keys` on the first partition.
    ssh-keygen -q -t ed25519 -N '' -f "$work/id" -C plugnode-update-test
    : >"$work/ssh"
    mcopy -i "$(fw_fat "$work/disk.img" 1)" "$work/ssh" ::ssh
    mcopy -i "$(fw_fat "$work/disk.img" 1)" "$work/id.pub" ::authorized_keys
fi

# --- the firmware's part, and one boot ----------------------------------------------------
boots=0
tryboot=0
# Boots the card once: picks the slot as the firmware would and starts QEMU in the
# background (-no-reboot: a reboot ends QEMU, and the next boot_card plays the firmware).
boot_card() {
    boots=$((boots + 1))
    local part
    part=$(fw_boot_partition "$work/disk.img" "$tryboot") || fail "autoboot.txt unreadable"
    BOOT_PART=$part
    mkdir -p "$work/boot-$boots"
    fw_load "$work/disk.img" "$part" "$work/boot-$boots" || fail "partition $part has nothing to boot"
    say "boot $boots: autoboot.txt $(fw_autoboot_summary "$work/disk.img"), tryboot flag $tryboot → partition $part: $(cat "$work/boot-$boots/cmdline.txt")"
    BOOT_STARTED=$SECONDS
    nice -n 19 qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 2048 \
        -kernel "$work/boot-$boots/vmlinuz" -initrd "$work/boot-$boots/initrd.img" \
        -append "$(fw_virt_cmdline "$work/boot-$boots/cmdline.txt")" \
        -display none -monitor none -no-reboot \
        -drive if=none,file="$work/disk.img",format=raw,id=disk -device virtio-blk-pci,drive=disk \
        -netdev "user,id=net,$forwards" -device virtio-net-pci,netdev=net,romfile= \
        -serial "file:$work/console-$boots.log" >"$work/qemu-$boots.log" 2>&1 &
    qemu_pid=$!
}
# Waits for QEMU to end (the guest rebooted or powered off); sets the next boot's flag.
wait_down() { # timeout
    local t0=$SECONDS
    while kill -0 "$qemu_pid" 2>/dev/null; do
        ((SECONDS - t0 < $1)) || fail "boot $boots did not end within $1 s"
        sleep 1
    done
    wait "$qemu_pid" || true
    qemu_pid=""
    if fw_ended_with_tryboot "$work/console-$boots.log"; then tryboot=1; else tryboot=0; fi
}

http_code() { curl -s -o "$work/body" -w '%{http_code}' --max-time 30 "$@" || true; }
wait_web() {
    while :; do
        kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited during boot $boots"
        ((SECONDS - BOOT_STARTED < BOOT_TIMEOUT)) || fail "the web page did not answer within $BOOT_TIMEOUT s"
        [[ $(http_code "$base/api/health") == 200 ]] && break
        sleep 1
    done
    [[ -f $work/ca.crt ]] || { http_code "$base/ca.crt" >/dev/null; cp "$work/body" "$work/ca.crt"; }
}
login() {
    local code
    code=$(http_code --cacert "$work/ca.crt" -X POST -H 'Content-Type: application/json' \
        -d "$(python3 -c 'import json,sys; print(json.dumps({"password": sys.argv[1]}))' "$password")" \
        "$secure/api/login")
    [[ $code == 200 ]] || fail "POST /api/login answered $code: $(cat "$work/body")"
    token=$(json_of "$(cat "$work/body")" '["token"]')
}
api() { # method path [curl args...]
    local method=$1 path=$2
    shift 2
    http_code --cacert "$work/ca.crt" -X "$method" -H "Authorization: Bearer $token" "$@" "$secure$path"
}
update_state() { api GET /api/system/update >/dev/null; cat "$work/body"; }
# The alert of `kind` the page and the e-ink show (GET /api/status), as "title: message".
alert_of() { # kind
    [[ $(api GET /api/status) == 200 ]] || return 1
    python3 -c 'import json,sys
for a in json.load(open(sys.argv[1]))["alerts"]:
    if a["kind"] == sys.argv[2]: print(a["title"] + ": " + a["message"]); break' "$work/body" "$1"
}

ssh_vm() {
    ssh -q -i "$work/id" -p "$ssh_port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o ConnectTimeout=10 root@127.0.0.1 "$@"
}
wait_ssh() {
    while ! ssh_vm true 2>/dev/null; do
        kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited during boot $boots"
        ((SECONDS - BOOT_STARTED < BOOT_TIMEOUT)) || fail "no SSH within $BOOT_TIMEOUT s"
        sleep 2
    done
}
# One request to the update helper's socket, as plugnode (its user, its group) sends it.
ask_helper() {
    ssh_vm "setpriv --reuid=plugnode --regid=plugnode --init-groups perl -MIO::Socket::UNIX -e '
        my \$s = IO::Socket::UNIX->new(Peer => \"/run/plugnode-update.sock\") or die \"connect: \$!\n\";
        print \$s \"\$ARGV[0]\n\"; print while <\$s>' '$1'"
}
upload_helper() { # bundle
    ssh_vm "install -d -o plugnode -g plugnode -m 0700 /var/lib/plugnode/update && rm -f /var/lib/plugnode/update/upload.raucb" ||
        fail "could not prepare the upload directory"
    ssh_vm "cat >/var/lib/plugnode/update/upload.raucb.part && chown plugnode:plugnode /var/lib/plugnode/update/upload.raucb.part &&
        chmod 0600 /var/lib/plugnode/update/upload.raucb.part && mv /var/lib/plugnode/update/upload.raucb.part /var/lib/plugnode/update/upload.raucb" <"$1" ||
        fail "could not upload $1"
}

# Uploads and installs a bundle; returns when the box has rebooted (QEMU ended).
install_bundle() { # bundle version
    if [[ $MODE == api ]]; then
        local code
        code=$(api POST /api/system/update/bundle -H 'Content-Type: application/octet-stream' --data-binary "@$1" --max-time 600)
        [[ $code == 200 ]] || fail "POST /api/system/update/bundle answered $code: $(head -c 400 "$work/body")"
        [[ $(json_of "$(cat "$work/body")" '["version"]') == "$2" ]] || fail "the check answer names another version: $(cat "$work/body")"
        ok "uploaded, checked: $(head -c 300 "$work/body")"
        INSTALL_STARTED=$SECONDS
        code=$(api POST /api/system/update/install -H 'Content-Type: application/json' \
            -d "$(python3 -c 'import json,sys; print(json.dumps({"password": sys.argv[1]}))' "$password")")
        [[ $code == 202 ]] || fail "POST /api/system/update/install answered $code: $(cat "$work/body")"
        ok "POST /api/system/update/install: 202"
        local last=""
        while kill -0 "$qemu_pid" 2>/dev/null; do
            ((SECONDS - INSTALL_STARTED < 1800)) || fail "the box did not restart within 30 minutes of install"
            if [[ $(api GET /api/system/update) == 200 ]]; then
                local progress
                progress=$(json_of "$(cat "$work/body")" '["state"]' 2>/dev/null || true)
                [[ $progress != "$last" ]] && echo "   state: $progress"
                last=$progress
            fi
            sleep 2
        done
    else
        upload_helper "$1"
        local answer
        answer=$(ask_helper "check upload.raucb")
        [[ $answer == ok\ * ]] || fail "check: $answer"
        ok "uploaded, checked: ${answer:0:300}"
        INSTALL_STARTED=$SECONDS
        answer=$(ask_helper "install upload.raucb")
        grep '^progress' <<<"$answer" | sed 's/^/   /' | tail -n 4
        [[ $(tail -n 1 <<<"$answer") == "ok "[AB] ]] || fail "install: $answer"
        ok "install: $(tail -n 1 <<<"$answer")"
        # What plugnode does when RAUC is done (exit 101 → poweroff-if-asked).
        ssh_vm 'systemctl reboot "0 tryboot"' || true
    fi
    wait_down 600
    ((tryboot == 1)) || fail "the box rebooted without the tryboot flag after installing"
    ok "the box rebooted with \"0 tryboot\" ($((SECONDS - INSTALL_STARTED)) s after install)"
}

# --- 1. version N, slot A -------------------------------------------------------------------
boot_card
[[ $BOOT_PART == 2 ]] || fail "a fresh card boots partition $BOOT_PART, not 2"
wait_web
ok "version $version_n answers ($((SECONDS - BOOT_STARTED)) s after QEMU started)"
if [[ $MODE == api ]]; then
    login
    [[ $(api GET /api/system/update) == 200 ]] || fail "GET /api/system/update answered $(cat "$work/body") (MODE=helper tests the root side without plugnode's update API)"
    state=$(cat "$work/body")
    [[ $(json_of "$state" '["running_version"]') == "$version_n" && $(json_of "$state" '["slot"]') == A &&
        $(json_of "$state" '["state"]["state"]') == idle ]] ||
        fail "GET /api/system/update: $state"
    ok "GET /api/system/update: $state"
else
    wait_ssh
    status=$(ask_helper status)
    [[ $status == ok\ * ]] || fail "status: $status"
    [[ $(json_of "${status#ok }" '["booted"]') == A && $(json_of "${status#ok }" '["trial"]') == False ]] || fail "status: $status"
    ok "helper status: $status"
fi
say "opening a channel from the box to the host's peer"
channel_started=$SECONDS
channel open
channel_secs=$((SECONDS - channel_started))

# --- 2. install N+1 → tryboot into B --------------------------------------------------------
say "installing $version_next"
install_bundle "$bundle_next" "$version_next"
[[ $(fw_boot_partition "$work/disk.img" 0) == 2 && $(fw_boot_partition "$work/disk.img" 1) == 3 ]] ||
    fail "after install autoboot.txt is $(fw_autoboot_summary "$work/disk.img"), not [all] 2, [tryboot] 3"
ok "autoboot.txt: $(fw_autoboot_summary "$work/disk.img") (only [tryboot] changed)"

# --- 3. B on trial, marked good ---------------------------------------------------------------
boot_card
[[ $BOOT_PART == 3 ]] || fail "the tryboot started partition $BOOT_PART, not 3"
grep -q 'rauc.slot=B' "$work/boot-$boots/cmdline.txt" && grep -q 'root=PARTUUID=504c5547-06' "$work/boot-$boots/cmdline.txt" ||
    fail "slot B's cmdline.txt does not name B: $(cat "$work/boot-$boots/cmdline.txt")"
ok "slot B's cmdline.txt names its own root (rauc-post-install)"
wait_web
ok "version $version_next answers on slot B ($((SECONDS - BOOT_STARTED)) s after QEMU started)"
if [[ $MODE == api ]]; then
    login
    last_state=""
    while :; do
        ((SECONDS - BOOT_STARTED < BOOT_TIMEOUT + 1200)) || fail "plugnode did not mark $version_next good: $(update_state)"
        state=$(update_state)
        [[ $(json_of "$state" '.get("last_result") and d["last_result"].get("kind")' 2>/dev/null) == updated &&
            $(json_of "$state" '["state"]["state"]') == idle ]] && break
        [[ $state != "$last_state" ]] && echo "   state: $state"
        last_state=$state
        sleep 3
    done
    updated_secs=$((SECONDS - INSTALL_STARTED))
    [[ $(json_of "$state" '["running_version"]') == "$version_next" && $(json_of "$state" '["slot"]') == B ]] ||
        fail "after the update: $state"
    ok "GET /api/system/update: $state"
    alert=$(alert_of update_done)
    [[ $alert == "Updated to $version_next"* ]] || fail "no \"Updated to $version_next\" alert: '$alert'"
    ok "the alert: $alert"
else
    wait_ssh
    status=$(ask_helper status)
    [[ $(json_of "${status#ok }" '["trial"]') == True && $(json_of "${status#ok }" '["booted"]') == B ]] || fail "status on B: $status"
    ok "on trial: $status"
    answer=$(ask_helper mark-good)
    # plugnode's own trial may have committed it first (its image has updates enabled).
    [[ $answer == "ok committed" || $answer == "ok not-in-trial" ]] || fail "mark-good: $answer"
    updated_secs=$((SECONDS - INSTALL_STARTED))
    status=$(ask_helper status)
    [[ $(json_of "${status#ok }" '["trial"]') == False && $(json_of "${status#ok }" '["default"]') == B &&
        $(json_of "${status#ok }" '["slots"]["B"]["version"]') == "$version_next" ]] || fail "status after mark-good: $status"
    ok "marked good: $status"
fi
[[ $(fw_boot_partition "$work/disk.img" 0) == 3 ]] || fail "autoboot.txt after mark-good: $(fw_autoboot_summary "$work/disk.img")"
ok "autoboot.txt: $(fw_autoboot_summary "$work/disk.img") ([all] switched to B)"
say "updated: $updated_secs s from \"install\" to \"updated\""
channel pay "after the update"

# --- 4. the broken N+2 → tryboot into A, give up, back on B ---------------------------------
say "installing the broken $version_broken"
install_bundle "$bundle_broken" "$version_broken"
[[ $(fw_boot_partition "$work/disk.img" 0) == 3 && $(fw_boot_partition "$work/disk.img" 1) == 2 ]] ||
    fail "after install autoboot.txt is $(fw_autoboot_summary "$work/disk.img")"
boot_card
[[ $BOOT_PART == 2 ]] || fail "the tryboot started partition $BOOT_PART, not 2"
rollback_started=$BOOT_STARTED
say "the broken version boots on slot A; waiting for the box to give up on it"
wait_down $((BOOT_TIMEOUT + 600))
((tryboot == 0)) || fail "the give-up reboot asked for another tryboot"
console=$(tr -d '\r' <"$work/console-$boots.log")
grep -aq 'deliberately broken test build' <<<"$console" || fail "the broken plugnode never ran"
grep -aq 'gave up on slot A' <<<"$console" || fail "the console does not show the give-up"
ok "plugnode failed at start, the root side gave up: $(grep -a -m1 -o 'gave up on slot A.*' <<<"$console")"
[[ $(fw_boot_partition "$work/disk.img" 0) == 3 && $(fw_boot_partition "$work/disk.img" 1) == 3 ]] ||
    fail "after the give-up autoboot.txt is $(fw_autoboot_summary "$work/disk.img")"
ok "autoboot.txt: $(fw_autoboot_summary "$work/disk.img") (nothing points at the broken slot)"
boot_card
[[ $BOOT_PART == 3 ]] || fail "after the give-up the firmware started partition $BOOT_PART, not 3"
wait_web
rollback_secs=$((SECONDS - rollback_started))
ok "back on $version_next (slot B), the page answers $rollback_secs s after the broken slot started"
if [[ $MODE == api ]]; then
    login
    state=$(update_state)
    [[ $(json_of "$state" '["running_version"]') == "$version_next" ]] || fail "after the rollback: $state"
    [[ $(json_of "$state" '["last_result"]["kind"]') == rolled_back &&
        $(json_of "$state" '["last_result"]["version"]') == "$version_broken" &&
        $(json_of "$state" '["last_result"]["back_on"]') == "$version_next" &&
        -n $(json_of "$state" '["last_result"]["reason"]') ]] || fail "no rolled_back result with a reason: $state"
    ok "GET /api/system/update: $state"
    alert=$(alert_of update_rolled_back)
    [[ $alert == *"The update to $version_broken did not start; you are back on $version_next"* ]] ||
        fail "no rollback alert: '$alert'"
    ok "the alert: $alert"
else
    wait_ssh
    status=$(ask_helper status)
    [[ $(json_of "${status#ok }" '["booted"]') == B && $(json_of "${status#ok }" '["trial"]') == False ]] || fail "status: $status"
    [[ $(json_of "${status#ok }" '["last_failed_trial"]["version"]') == "$version_broken" &&
        $(json_of "${status#ok }" '["last_failed_trial"]["back_on"]') == "$version_next" ]] || fail "last_failed_trial: $status"
    ok "helper status: $status"
fi
channel pay "after the rollback"

# --- the end: a clean power-off -------------------------------------------------------------
if [[ $MODE == api ]]; then
    api POST /api/system/shutdown -H 'Content-Type: application/json' -d '{}' >/dev/null
else
    ssh_vm 'systemctl poweroff' || true
fi
wait_down 600
echo "PASS: updated $version_n → $version_next through tryboot and commit; the broken $version_broken rolled back to $version_next by itself; the channel opened on $version_n paid each way after both"
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
printf '   figures: bundle %d bytes (%s MiB; xz -6: %s MiB); install → updated %d s; rollback (broken slot starts → page answers on the previous version) %d s; channel opened (wallet, coins, 6 blocks, a payment each way) in %d s; test %d s in all\n' \
    "$bundle_bytes" "$(mib "$bundle_bytes")" "$(mib "$bundle_xz_bytes")" \
    "$updated_secs" "$rollback_secs" "$channel_secs" $((SECONDS - started))
