#!/usr/bin/env bash
# Boot test of the SD-card image in QEMU (a generic arm64 machine, `-M virt`, booting
# Debian's arm64 kernel and initrd from the boot slot the card's autoboot.txt names, as the
# Pi firmware would: image/qemu-firmware.sh). Everything is checked from outside the VM:
#
#   1. the web page answers through forwarded ports: on 80 GET /api/health, the trust page
#      (GET /) and the CA (GET /ca.crt), not the API; on 443 over HTTPS with that CA;
#   2. systemd reached multi-user with nothing failed, plugnode.service is active (running
#      as the `plugnode` user, with its watchdog armed), booted from slot A with its root
#      file system checked, and the data partition (/data, plugnode's data directory) grew
#      to fill the disk (a 16 GiB "card"): the test image reports this on its serial console;
#      bitcoind (regtest-sim in the test image) runs under the unit's sandbox and answers
#      plugnode's RPC (/api/health says "ready" or "syncing"), as its own user `bitcoind`
#      with no capability, and that user can read none of plugnode's secrets;
#   3. a USB stick (FAT32) plugged into the VM is mounted by the root mount helper on request
#      from inside plugnode's sandbox, as the plugnode user, who can then write to it
#      (virt only);
#   4. logging in over HTTPS with the test profile's password and POST /api/system/shutdown stop
#      plugnode in order, it exits with 100 and the unit powers the VM off;
#   5. after the VM is off, the disk's data partition fills the disk and the file written
#      through the mount helper is on the stick.
#
#   image/smoke-test.sh [IMAGE]     default: image/out/plugnode-test.img
#                                   (build it with: image/build.sh --profile test)
#   MACHINE=raspi3b image/smoke-test.sh
#       the same on an emulated Raspberry Pi 3 (`-M raspi3b`, the Pi's own device tree with
#       plugnode's SPI overlay applied as the GPU firmware would, the image's cmdline.txt):
#       also checks that /dev/spidev0.0 and /dev/gpiochip0 exist for the groups spi and
#       gpio. Slower; QEMU's Pi cannot power off, so there the check ends at the kernel's
#       "Power down".
# The image itself is not changed (the VM boots a sparse copy). Exit 0 when every check
# passed. KEEP=1 keeps the work dir (console log, disk) even on success.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=qemu-firmware.sh
. "$here/qemu-firmware.sh"
# shellcheck source=test/harness.sh
. "$here/test/harness.sh"
MACHINE=${MACHINE:-virt}
[[ $MACHINE == virt || $MACHINE == raspi3b ]] || { echo "smoke-test.sh: MACHINE is virt or raspi3b" >&2; exit 2; }
img="${1:-$here/out/plugnode-test.img}"
password_file="$here/test/web-password"
BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
STOP_TIMEOUT=${STOP_TIMEOUT:-600}
# The "SD card": 16 GiB (the image alone is 3.7 GB), so the data partition grows and
# plugnode's auto prune finds room for a regtest
# chain.
DISK_MIB=16384

[[ -f $img ]] || { echo "smoke-test.sh: no image $img; build it with: image/build.sh --profile test" >&2; exit 2; }
# Debian packages it needs, installed when missing (as build.sh does); the loop below
# checks the tools themselves, for machines where apt cannot be used.
need=(qemu-system-arm mtools fdisk curl python3 device-tree-compiler)
missing=()
for pkg in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})) && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in qemu-system-aarch64 mcopy mdir mtype sfdisk curl python3 fdtoverlay; do
    command -v "$tool" >/dev/null || {
        echo "smoke-test.sh: $tool is missing (apt-get install ${need[*]})" >&2
        exit 2
    }
done
password=$(cat "$password_file")

harness_begin smoke "console.log, disk.img; host/: the chain's log"

# --- a copy of the image, on a disk larger than the image (as an SD card would be) -------
say "copying $img"
cp --sparse=always "$img" "$work/disk.img"
truncate -s ${DISK_MIB}M "$work/disk.img"
# What the Pi firmware would boot: a plain boot, so autoboot.txt's [all] slot.
boot_part=$(fw_boot_partition "$work/disk.img" 0) || fail "no autoboot.txt with a boot_partition on the first partition"
[[ $boot_part == 2 ]] || fail "a fresh card boots partition $boot_part, not 2 (slot A)"
fw_load "$work/disk.img" "$boot_part" "$work" || fail "partition $boot_part has no kernel the firmware could boot"
boot="$(fw_fat "$work/disk.img" "$boot_part")"
kernel=$(sed -n 's/^kernel=//p' "$work/config.txt")
grep -q 'rauc.slot=A' "$work/cmdline.txt" || fail "slot A's cmdline.txt lacks rauc.slot=A: $(cat "$work/cmdline.txt")"
data_before=$(fw_partition_mib "$work/disk.img" 7)

# A 64 MiB USB stick with one FAT32 partition, for the mount helper.
truncate -s 64M "$work/stick.img"
printf 'label: dos\nstart=2048, type=c\n' | sfdisk -q "$work/stick.img"
mkfs.vfat -F 32 -n BACKUP -C "$work/stick.part" $((63 * 1024)) >/dev/null
dd if="$work/stick.part" of="$work/stick.img" bs=1M seek=1 conv=notrunc status=none
rm "$work/stick.part"

# The chain the test image's bitcoind forwards to (image/test/plugnode-test.toml), on the host.
python3 "$here/test/lightning.py" chain "$work/host" || fail "could not start the chain on the host (see $work/host/chain.log)"

port=$(free_port)
tls_port=$(free_port)
base="http://127.0.0.1:$port"
secure="https://127.0.0.1:$tls_port"
forwards="hostfwd=tcp:127.0.0.1:$port-:80,hostfwd=tcp:127.0.0.1:$tls_port-:443"

# --- boot ---------------------------------------------------------------------------------
qemu_common=(-kernel "$work/vmlinuz" -initrd "$work/initrd.img" -display none -monitor none -no-reboot)
if [[ $MACHINE == virt ]]; then
    qemu=(-M virt -cpu cortex-a72 -smp 2 -m 2048 "${qemu_common[@]}"
        -append "$(fw_virt_cmdline "$work/cmdline.txt")"
        -drive if=none,file="$work/disk.img",format=raw,id=disk -device virtio-blk-pci,drive=disk
        -netdev "user,id=net,$forwards" -device virtio-net-pci,netdev=net,romfile=
        -device qemu-xhci,id=xhci -drive if=none,id=stick,file="$work/stick.img",format=raw
        -device usb-storage,bus=xhci.0,drive=stick
        -serial "file:$work/console.log")
else
    # What the Pi's GPU firmware does from config.txt: the board's device tree plus our
    # SPI overlay, and cmdline.txt as the kernel command line. The serial console is the
    # mini UART (ttyS1), QEMU's second serial port.
    mcopy -i "$boot" ::bcm2837-rpi-3-b.dtb "$work/board.dtb"
    mcopy -i "$boot" ::overlays/plugnode-spi0.dtbo "$work/plugnode-spi0.dtbo"
    mtype -i "$boot" ::config.txt | grep -q '^dtoverlay=plugnode-spi0' || fail "config.txt does not load the SPI overlay"
    fdtoverlay -i "$work/board.dtb" -o "$work/pi.dtb" "$work/plugnode-spi0.dtbo"
    cmdline=$(cat "$work/cmdline.txt")
    qemu=(-M raspi3b -m 1G -smp 4 "${qemu_common[@]}" -dtb "$work/pi.dtb" -append "$cmdline"
        -drive if=sd,file="$work/disk.img",format=raw
        -usb -netdev "user,id=net,$forwards" -device usb-net,netdev=net
        -serial null -serial "file:$work/console.log")
fi
say "booting $kernel from partition $boot_part in qemu-system-aarch64 -M $MACHINE; the web page is forwarded to $base and $secure"
boot_started=$SECONDS
nice -n 19 qemu-system-aarch64 "${qemu[@]}" >"$work/qemu.log" 2>&1 &
qemu_pid=$!

http_code() { curl -s -o "$work/body" -w '%{http_code}' --max-time 5 "$@" || true; }
json_field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get(sys.argv[2], ""))' "$work/body" "$1" 2>/dev/null || true; }

while :; do
    kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited during boot: $(cat "$work/qemu.log")"
    ((SECONDS - boot_started < BOOT_TIMEOUT)) || fail "the web page did not answer within $BOOT_TIMEOUT s"
    [[ $(http_code "$base/api/health") == 200 ]] && break
    sleep 1
done
web_secs=$((SECONDS - boot_started))
say "the web page answers, $web_secs s after QEMU started"
ok "GET /api/health: $(tr -d '\n' <"$work/body" | cut -c1-200)"
phase=$(json_field phase)
[[ -n $phase ]] || fail "/api/health has no \"phase\""
[[ $(http_code "$base/") == 200 ]] || fail "GET / did not answer 200"
grep -qi '<html' "$work/body" || fail "GET / is not an HTML page"
ok "GET / on port 80 serves the page that says how to trust the box ($(stat -c %s "$work/body") bytes)"
# A device's first steps: the CA over plain HTTP, then everything else over HTTPS with it.
[[ $(http_code "$base/ca.crt") == 200 ]] || fail "GET /ca.crt did not answer 200"
cp "$work/body" "$work/ca.crt"
grep -q 'BEGIN CERTIFICATE' "$work/ca.crt" || fail "/ca.crt is not a PEM certificate"
[[ $(http_code --cacert "$work/ca.crt" "$secure/api/health") == 200 ]] ||
    fail "HTTPS with the box's CA did not answer: $(curl -sS --cacert "$work/ca.crt" "$secure/api/health" 2>&1 | head -c 300)"
[[ $(http_code --cacert "$work/ca.crt" "$secure/") == 200 ]] && grep -qi '<html' "$work/body" ||
    fail "GET / over HTTPS is not the web page"
ok "port 443 serves the page over HTTPS with a certificate from the CA on port 80"
[[ $(http_code -X POST -d '{}' "$base/api/login") == 404 ]] || fail "port 80 answers the API"
ok "port 80 does not answer the API"

# --- what systemd says, reported by the test image on the serial console -----------------
say "waiting for the boot report on the serial console"
while ! grep -q 'PLUGNODE-SMOKE system=' "$work/console.log" 2>/dev/null; do
    kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited before the boot report"
    ((SECONDS - boot_started < BOOT_TIMEOUT)) || fail "no boot report within $BOOT_TIMEOUT s"
    sleep 1
done
report_secs=$((SECONDS - boot_started))
sleep 1
report=$(grep -a -m1 -o 'PLUGNODE-SMOKE system=.*' "$work/console.log" | tr -d '\r')
echo "   $report"
echo "   $(grep -a -m1 -o 'PLUGNODE-SMOKE-STATUS.*' "$work/console.log" | tr -d '\r')"
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $report"; }
[[ $(field system) == running && $(field failed) == none ]] ||
    fail "systemd is '$(field system)', failed units: $(field failed)"
ok "systemd finished booting, nothing failed"
[[ $(field multi-user) == active ]] || fail "multi-user.target is $(field multi-user)"
ok "multi-user.target reached"
[[ $(field plugnode) == active/running ]] || fail "plugnode.service is $(field plugnode)"
ok "plugnode.service active (Type=notify: READY was sent)"
[[ $(field user) == plugnode ]] || fail "plugnode runs as '$(field user)', not the plugnode user"
ok "runs as the plugnode user"
[[ $(field watchdog-usec) == 1min ]] || fail "watchdog is '$(field watchdog-usec)'"
ok "watchdog armed (1 min)"
[[ $(field password-file-on-boot) == no ]] || fail "plugnode-password.txt was left on the boot partition"
ok "the boot partition's password file was taken and deleted"
[[ $(field slot) == A ]] || fail "booted slot '$(field slot)', not A"
ok "booted slot A (rauc.slot=A, root on partition 5)"
image_mib=$(($(stat -c %s "$img") / 1048576))
data_mib=$(field data-mib)
((data_mib > (DISK_MIB - image_mib) * 9 / 10)) || fail "the data file system is $data_mib MiB: it did not grow to the disk"
ok "the data file system (/data) grew to $data_mib MiB"
[[ $(field plugnode-data) == /data/plugnode ]] || fail "/var/lib/plugnode is '$(field plugnode-data)', not /data/plugnode bind-mounted"
ok "/var/lib/plugnode is /data/plugnode (bind mount)"
[[ $(field update-socket) == active ]] || fail "plugnode-update.socket is $(field update-socket)"
ok "the update helper's socket listens"
grep -aq 'plugnode-root: clean' "$work/console.log" || fail "no file system check of the root slot on the console (plugnode-root: clean)"
ok "the initramfs checked the root slot's file system"

[[ $(field hostname) == plugnode ]] || fail "the hostname is '$(field hostname)', not plugnode (plugnode.local)"
for service in avahi-daemon systemd-timesyncd systemd-networkd systemd-resolved; do
    [[ ,$(field services) == *",$service:active,"* ]] || fail "$service is not active: $(field services)"
done
ok "avahi (plugnode.local), timesyncd, networkd and resolved are active"
[[ $(field ssh) == disabled/inactive ]] || fail "SSH is '$(field ssh)', not off"
ok "SSH is off"
[[ $(field mount-socket) == active ]] || fail "plugnode-mount.socket is $(field mount-socket)"
ok "the mount helper's socket listens"
gpiochip=$(field gpiochip) spidev=$(field spidev)
if [[ $MACHINE == raspi3b ]]; then
    [[ $spidev == spi:660 ]] || fail "/dev/spidev0.0 is '$spidev', not group spi mode 660: the SPI overlay or the udev rule does not work"
    ok "/dev/spidev0.0 exists (SPI overlay) for group spi, mode 660 (udev rule)"
    [[ $gpiochip == gpio:660 ]] || fail "/dev/gpiochip0 is '$gpiochip', not group gpio mode 660"
    ok "/dev/gpiochip0 for group gpio, mode 660"
elif [[ $gpiochip != none ]]; then
    [[ $gpiochip == gpio:660 ]] || fail "/dev/gpiochip0 is '$gpiochip', not group gpio mode 660"
    ok "/dev/gpiochip0 (the virt board's GPIO) for group gpio, mode 660 (udev rule)"
fi

if [[ $MACHINE == virt ]]; then
    while ! grep -aq 'PLUGNODE-SMOKE-MOUNT ' "$work/console.log"; do
        kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited before the mount report"
        ((SECONDS - boot_started < BOOT_TIMEOUT)) || fail "no mount report within $BOOT_TIMEOUT s"
        sleep 1
    done
    sleep 1
    mount_report=$(grep -a -m1 -o 'PLUGNODE-SMOKE-MOUNT .*' "$work/console.log" | tr -d '\r')
    echo "   $mount_report"
    mount_field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $mount_report"; }
    [[ $(mount_field mount) == ok_/media/plugnode/backup/plugnode-backup ]] ||
        fail "the mount helper did not mount the stick for plugnode: $(mount_field mount)"
    ok "the mount helper mounted the USB stick on plugnode's request (from its sandbox)"
    [[ $(mount_field write) == ok ]] || fail "plugnode could not write to the mounted stick"
    ok "plugnode, in its own mount namespace, wrote to the stick"
    [[ $(mount_field status) == ok_mounted_sda1 ]] || fail "status: $(mount_field status)"
    [[ $(mount_field unmount) == ok_unmounted ]] || fail "unmount: $(mount_field unmount)"
    ok "status and unmount answered"
    [[ $(mount_field refused) == error_* ]] || fail "the helper mounted a non-USB disk: $(mount_field refused)"
    ok "the helper refuses the system disk"
fi

# --- bitcoind runs under the unit's sandbox ----------------------------------------------
say "waiting for bitcoind (regtest-sim) to answer plugnode's RPC"
while :; do
    [[ $(http_code "$base/api/health") == 200 ]] || fail "/api/health stopped answering"
    bitcoind=$(json_field bitcoind)
    [[ $bitcoind == ready || $bitcoind == syncing ]] && break
    ((SECONDS - boot_started < BOOT_TIMEOUT)) || fail "bitcoind is still '$bitcoind' after $BOOT_TIMEOUT s"
    sleep 2
done
bitcoind_secs=$((SECONDS - boot_started))
ok "bitcoind is $bitcoind ($bitcoind_secs s after QEMU started)"
while ! grep -aq 'PLUGNODE-SMOKE-BITCOIND ' "$work/console.log"; do
    kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited before the bitcoind report"
    ((SECONDS - boot_started < BOOT_TIMEOUT)) || fail "no bitcoind report within $BOOT_TIMEOUT s"
    sleep 1
done
bitcoind_report=$(grep -a -m1 -o 'PLUGNODE-SMOKE-BITCOIND .*' "$work/console.log" | tr -d '\r')
echo "   $bitcoind_report"
bitcoind_field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $bitcoind_report"; }
[[ $(bitcoind_field user) == bitcoind ]] || fail "bitcoind runs as '$(bitcoind_field user)', not its own user"
[[ $(bitcoind_field cap-eff) == 0000000000000000 ]] || fail "bitcoind has capabilities: $(bitcoind_field cap-eff)"
(($(bitcoind_field secrets) > 0)) || fail "the box has no secrets to check"
[[ $(bitcoind_field reads) == nothing ]] || fail "bitcoind's user can read $(bitcoind_field reads)"
ok "bitcoind runs as its own user, with no capability, and can read none of plugnode's $(bitcoind_field secrets) secrets"

# --- shut down through plugnode's API -----------------------------------------------------
say "logging in and asking plugnode to shut the box down"
code=$(http_code --cacert "$work/ca.crt" -X POST -H 'Content-Type: application/json' \
    -d "$(python3 -c 'import json,sys; print(json.dumps({"password": sys.argv[1]}))' "$password")" \
    "$secure/api/login")
[[ $code == 200 ]] || fail "POST /api/login answered $code: $(cat "$work/body")"
token=$(json_field token)
[[ -n $token ]] || fail "no token in the login answer"
ok "logged in with the test profile's password"
stop_started=$SECONDS
code=$(http_code --cacert "$work/ca.crt" -X POST -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d '{}' "$secure/api/system/shutdown")
[[ $code == 202 ]] || fail "POST /api/system/shutdown answered $code: $(cat "$work/body")"
ok "POST /api/system/shutdown: 202"
if [[ $MACHINE == virt ]]; then
    while kill -0 "$qemu_pid" 2>/dev/null; do
        ((SECONDS - stop_started < STOP_TIMEOUT)) || fail "the VM did not power off within $STOP_TIMEOUT s"
        sleep 1
    done
    qemu_status=0
    wait "$qemu_pid" || qemu_status=$?
    qemu_pid=""
    stop_secs=$((SECONDS - stop_started))
    say "the VM powered off $stop_secs s after the shutdown request"
    [[ $qemu_status == 0 ]] || fail "QEMU exited with $qemu_status"
else
    # QEMU's Raspberry Pi has no power controller: the kernel's last word is the proof.
    while ! grep -aq 'reboot: Power down' "$work/console.log"; do
        kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited before the power-off"
        ((SECONDS - stop_started < STOP_TIMEOUT)) || fail "the Pi did not power down within $STOP_TIMEOUT s"
        sleep 1
    done
    stop_secs=$((SECONDS - stop_started))
    say "the kernel powered down $stop_secs s after the shutdown request"
    sleep 2
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=""
fi

console=$(tr -d '\r' <"$work/console.log")
expect() { grep -aqF -- "$1" <<<"$console" || fail "the console log lacks: $1"; ok "$2"; }
expect "bitcoind stopped (exit code 0)" "bitcoind (regtest-sim) stopped cleanly"
expect "plugnode stopped; safe to unplug" "plugnode stopped everything in order"
expect "plugnode ended: result=success exited=100" "plugnode exited with 100 (power-off asked), the unit counts it a success"
expect "plugnode asked for a power-off; powering off" "the unit powered the box off"
expect "reboot: Power down" "the kernel powered down"
for bad in "Watchdog timeout" "State 'stop-sigterm' timed out" "Killing process" "Failed to start plugnode" "plugnode.service: Failed with result"; do
    if grep -aqF -- "$bad" <<<"$console"; then fail "the console log shows: $bad"; fi
done
ok "no watchdog timeout, no kill, no failed start"

data_after=$(fw_partition_mib "$work/disk.img" 7)
((data_after >= (DISK_MIB - image_mib) * 95 / 100)) || fail "the data partition did not grow ($data_before → $data_after MiB)"
ok "data partition grew from $data_before to $data_after MiB"

if [[ $MACHINE == virt ]]; then
    [[ $(mtype -i "$work/stick.img@@1M" ::/plugnode-backup/plugnode-smoke.txt 2>/dev/null | tr -d '\r\n') == written-by-plugnode ]] ||
        fail "the file plugnode wrote is not on the stick"
    ok "the file plugnode wrote is on the stick (the helper unmounted it cleanly)"
fi

echo "PASS: image boots, serves its page, runs plugnode under systemd and powers off through plugnode"
printf '   figures: web page answers %d s after QEMU start; boot report at %d s; bitcoind answers at %d s; power-off %d s after the request; smoke test %d s in all\n' \
    "$web_secs" "$report_secs" "$bitcoind_secs" "$stop_secs" $((SECONDS - started))
