#!/usr/bin/env bash
# Builds the flashable SD-card image of plugnode: Debian bookworm arm64 from Debian's
# package archive (mmdebstrap + qemu-user-static), the Raspberry Pi firmware and Debian's
# arm64 kernel, plugnode and its systemd units, a FAT boot partition and an ext4 root that
# grows to fill the card on first boot.
#
#   image/build.sh --bitcoin-core PATH/bitcoin-30.2-aarch64-linux-gnu.tar.gz
#       the production image: image/out/plugnode.img (+ .img.xz). The Bitcoin Core release
#       tarball (download it from bitcoincore.org yourself) must match a SHA-256 pinned in
#       image/bitcoin-core.sha256, or the build stops.
#   image/build.sh --profile test
#       the test image: image/out/plugnode-test.img. regtest-sim instead of Bitcoin Core
#       (regtest), no display, a known web password: for image/smoke-test.sh only, never
#       for a real box.
#
# Options: --no-xz (skip the compressed copy), --skip-cross-build (use the binaries already
# in image/out/aarch64), --from-git REV (build plugnode from a clean export of commit REV
# instead of the working tree), --refresh-base (rebuild the cached Debian base even if its
# inputs did not change), --out DIR.
# Needs root (mmdebstrap, chroot). Run it under `nice -n 19` on a shared machine: the first
# run spends ~10 minutes on the Debian base (cached afterwards in $PLUGNODE_IMAGE_CACHE,
# default /var/tmp/plugnode-image-cache) plus the aarch64 build (image/cross-build.sh).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
profile=production
bitcoin_core=""
xz=1
cross_build=1
from_git=()
refresh_base=0
base_only=0
out="$here/out"
cache="${PLUGNODE_IMAGE_CACHE:-/var/tmp/plugnode-image-cache}"
sums_file="${PLUGNODE_BITCOIN_CORE_SUMS:-$here/bitcoin-core.sha256}"
suite=bookworm
mirror="${PLUGNODE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${PLUGNODE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

die() { echo "build.sh: $*" >&2; exit 1; }
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
    case "$1" in
        --profile) profile="${2:-}"; shift 2 ;;
        --profile=*) profile="${1#*=}"; shift ;;
        --bitcoin-core) bitcoin_core="${2:-}"; shift 2 ;;
        --bitcoin-core=*) bitcoin_core="${1#*=}"; shift ;;
        --out) out="${2:-}"; shift 2 ;;
        --no-xz) xz=0; shift ;;
        --skip-cross-build) cross_build=0; shift ;;
        --from-git) from_git=(--from-git "${2:-}"); shift 2 ;;
        --refresh-base) refresh_base=1; shift ;;
        --base-only) base_only=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done
started=$SECONDS
stage() { echo "== [$((SECONDS - started)) s] $*"; }

# --- inputs first: refuse before spending any time --------------------------------------
case "$profile" in
    production) image_name=plugnode ;;
    test) image_name=plugnode-test ;;
    *) die "--profile is 'production' (default) or 'test', not '$profile'" ;;
esac
if [[ $profile == production ]]; then
    if [[ -z $bitcoin_core ]]; then
        cat >&2 <<EOF
build.sh: the production image needs the official Bitcoin Core release for aarch64.
  Download it from https://bitcoincore.org/en/download/ (the file for "Linux (ARM64)",
  $(awk '!/^#/ && NF == 2 { print $2; exit }' "$sums_file")), verify its signatures as that page explains, and run:
      image/build.sh --bitcoin-core /path/to/$(awk '!/^#/ && NF == 2 { print $2; exit }' "$sums_file")
  Its SHA-256 must be one of those pinned in image/bitcoin-core.sha256.
  (image/build.sh --profile test builds the test image with regtest-sim instead.)
EOF
        exit 1
    fi
    [[ -f $bitcoin_core ]] || die "--bitcoin-core: no file $bitcoin_core"
    tarball_name=$(basename "$bitcoin_core")
    # Verify (and later unpack) a private copy, so the file cannot change in between.
    mkdir -p "$out"
    verified="$out/.bitcoin-core-verified.tar.gz"
    cp "$bitcoin_core" "$verified"
    pinned=$(awk -v f="$tarball_name" '!/^#/ && ($2 == f || $2 == "*" f) { print $1 }' "$sums_file")
    [[ -n $pinned ]] || die "$tarball_name is not a pinned Bitcoin Core release (image/bitcoin-core.sha256 lists: $(awk '!/^#/ && NF == 2 { printf "%s ", $2 }' "$sums_file"))"
    actual=$(sha256sum "$verified" | cut -d' ' -f1)
    if [[ $actual != "$pinned" ]]; then
        rm -f "$verified"
        die "$bitcoin_core does NOT match the pinned SHA-256:
  expected $pinned
  got      $actual
  The file is damaged or not the official release. Download it again from bitcoincore.org."
    fi
    echo "== $tarball_name: SHA-256 matches the pinned $pinned"
elif [[ -n $bitcoin_core ]]; then
    die "the test profile installs regtest-sim, not Bitcoin Core: drop --bitcoin-core"
fi
[[ $(id -u) -eq 0 ]] || die "run as root (mmdebstrap and chroot need it)"

# --- tools --------------------------------------------------------------------------------
need=(mmdebstrap qemu-user-static binfmt-support arch-test mtools dosfstools fdisk e2fsprogs
    device-tree-compiler xz-utils)
missing=()
for pkg in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    stage "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
# Running arm64 maintainer scripts needs the arm64 emulator registered with binfmt_misc
# (the F flag makes it work inside the chroot).
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    [[ -e /proc/sys/fs/binfmt_misc/register ]] ||
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
fi
grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "the arm64 emulator is not enabled in binfmt_misc"

# --- plugnode for aarch64 -----------------------------------------------------------------
bins="$out/aarch64"
if ((cross_build && !base_only)); then
    stage "cross-building plugnode (image/cross-build.sh)"
    sim_flag=()
    [[ $profile == test ]] && sim_flag=(--with-sim)
    PLUGNODE_OUT="$out" "$here/cross-build.sh" "${sim_flag[@]}" "${from_git[@]}"
fi
((base_only)) || [[ -x $bins/plugnode ]] || die "no $bins/plugnode: run image/cross-build.sh"
((base_only)) || [[ $profile == production || -x $bins/regtest-sim ]] || die "no $bins/regtest-sim: run image/cross-build.sh --with-sim"

# --- the Debian base (cached) -------------------------------------------------------------
packages=(
    # boot and system
    systemd-sysv udev dbus kmod iproute2 netbase procps
    linux-image-arm64 initramfs-tools zstd raspi-firmware
    # file systems: the card (FAT, ext4, growing it) and backup sticks (FAT, exFAT, ext4)
    dosfstools e2fsprogs fdisk exfatprogs
    # network: DHCP (systemd-networkd), DNS, time, plugnode.local, Wi-Fi
    systemd-resolved systemd-timesyncd avahi-daemon libnss-mdns
    wireless-regdb firmware-brcm80211 wpasupplicant
    # off by default; turned on by an `ssh` + `authorized_keys` file on the boot partition
    openssh-server
    # A/B system updates: RAUC, and unsquashfs, which it (and the update helper) uses to
    # read a plain bundle's manifest and release file without mounting it
    rauc squashfs-tools
)
components="main contrib non-free-firmware"
base_key=$(printf '%s\n' "v1" "$suite" "$mirror" "$security_mirror" "$components" "${packages[@]}" \
    "$(sed -n '/^base_hooks() {/,/^}/p' "$0")" | sha256sum | cut -c1-16)
base="$cache/base-$suite-arm64-$base_key.tar"

# Files the package installs need to see: raspi-firmware's settings (in a chroot it cannot
# guess the root device or the console; dpkg keeps our file: force-confold), and ext4 in
# the initramfs (otherwise it leaves fsck out: it cannot see the real root device in a
# chroot).
base_hooks() {
    cat <<'HOOKS'
mkdir -p "$1/etc/default" "$1/etc/initramfs-tools/conf.d"
printf '%s\n' 'ROOTPART=LABEL=RASPIROOT' 'CONSOLES="tty0 ttyS1,115200"' >"$1/etc/default/raspi-firmware"
printf '%s\n' 'dtoverlay=plugnode-spi0' >"$1/etc/default/raspi-firmware-custom"
echo FSTYPE=ext4 >"$1/etc/initramfs-tools/conf.d/plugnode-fstype"
HOOKS
}

if [[ ! -f $base || $refresh_base == 1 ]]; then
    stage "building the Debian $suite arm64 base with mmdebstrap (about 10 minutes)"
    mkdir -p "$cache"
    rm -rf "$cache"/base-"$suite"-arm64-*.tar.partial
    # The initramfs is built once at the end instead of after each kernel-related package
    # (under emulation it takes minutes each time).
    mmdebstrap --architectures=arm64 --variant=minbase --format=tar \
        --components="$components" \
        --include="$(IFS=,; echo "${packages[*]}")" \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='force-confdef' --dpkgopt='force-confold' \
        --setup-hook="$(base_hooks)" \
        --essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs && ln -s /bin/true "$1/usr/sbin/update-initramfs"' \
        --customize-hook='rm "$1/usr/sbin/update-initramfs" && chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs' \
        --customize-hook='chroot "$1" update-initramfs -c -k all' \
        "$suite" "$base.partial" \
        "deb $mirror $suite $components" \
        "deb $mirror $suite-updates $components" \
        "deb $security_mirror $suite-security $components"
    mv "$base.partial" "$base"
else
    stage "using the cached Debian base $base"
fi
((base_only)) && { stage "the Debian base is ready: $base"; exit 0; }

# --- the root file system -----------------------------------------------------------------
work="$out/work-$image_name"
root="$work/rootfs"
cleanup() {
    for m in dev/pts dev sys proc; do
        mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
    done
    return 0
}
trap cleanup EXIT
cleanup
rm -rf "$work"
mkdir -p "$root"
stage "unpacking the base"
tar --numeric-owner -xpf "$base" -C "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

stage "installing plugnode ($profile profile)"
install -D -m 0755 "$bins/plugnode" "$root/usr/local/bin/plugnode"
lib="$root/usr/local/lib/plugnode"
install -d "$lib"
for script in poweroff-if-asked mount-helper boot-import grow-root; do
    install -m 0755 "$repo/systemd/$script" "$lib/$script"
done
units=(plugnode.service plugnode-mount.socket plugnode-mount@.service plugnode-fsck@.service
    plugnode-boot-import.service plugnode-grow-root.service)
for unit in "${units[@]}"; do
    install -m 0644 "$repo/systemd/$unit" "$root/etc/systemd/system/$unit"
done
install -D -m 0644 "$repo/systemd/60-plugnode.rules" "$root/etc/udev/rules.d/60-plugnode.rules"
install -D -m 0644 "$repo/systemd/plugnode.sysusers" "$root/usr/lib/sysusers.d/plugnode.conf"
install -D -m 0644 "$repo/systemd/plugnode.tmpfiles" "$root/usr/lib/tmpfiles.d/plugnode.conf"
install -D -m 0644 "$repo/README.md" "$root/usr/share/doc/plugnode/README.md"
install -D -m 0644 "$repo/systemd/README.md" "$root/usr/share/doc/plugnode/systemd.md"
in_root systemd-sysusers
install -d -m 0755 "$root/media/plugnode"
install -d -m 0755 "$root/var/lib/plugnode-image"

install -d -m 0755 "$root/etc/plugnode"
if [[ $profile == production ]]; then
    install -m 0644 "$here/plugnode.toml" "$root/etc/plugnode/plugnode.toml"
    stage "installing Bitcoin Core from $tarball_name"
    tmp=$(mktemp -d)
    tar -xzf "$verified" -C "$tmp" --wildcards '*/bin/bitcoind' '*/bin/bitcoin-cli'
    install -m 0755 "$tmp"/*/bin/bitcoind "$tmp"/*/bin/bitcoin-cli "$root/usr/local/bin/"
    rm -rf "$tmp" "$verified"
else
    install -m 0644 "$here/test/plugnode-test.toml" "$root/etc/plugnode/plugnode.toml"
    install -m 0755 "$bins/regtest-sim" "$root/usr/local/bin/regtest-sim"
fi

stage "configuring the system"
echo plugnode >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	plugnode
::1		localhost ip6-localhost ip6-loopback
EOF
cat >"$root/etc/fstab" <<'EOF'
# <file system>  <mount point>   <type>  <options>                        <dump> <pass>
LABEL=RASPIROOT  /               ext4    rw,noatime,errors=remount-ro     0      1
# The boot partition is readable by root only: users drop a password file there.
LABEL=RASPIFIRM  /boot/firmware  vfat    rw,noatime,umask=0077,nofail     0      2
EOF
# Wired (eth0 on the Pi, enp0s* in QEMU, usb0 for USB gadgets) and Wi-Fi, by DHCP.
install -d "$root/etc/systemd/network"
cat >"$root/etc/systemd/network/50-plugnode.network" <<'EOF'
[Match]
Name=e* usb* wl*

[Network]
DHCP=yes
IPv6AcceptRA=yes
EOF
# avahi answers for plugnode.local; resolved must not fight it over multicast DNS.
install -d "$root/etc/systemd/resolved.conf.d"
printf '[Resolve]\nMulticastDNS=no\nLLMNR=no\n' >"$root/etc/systemd/resolved.conf.d/plugnode.conf"
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
# A persistent journal (crash diagnosis after a power cut), kept small for the SD card.
install -d "$root/etc/systemd/journald.conf.d" "$root/var/log/journal"
printf '[Journal]\nStorage=persistent\nSystemMaxUse=64M\n' >"$root/etc/systemd/journald.conf.d/plugnode.conf"
# SSH: installed but off, without host keys (each box makes its own when SSH is turned on
# through the boot partition, see systemd/boot-import). Never passwords.
rm -f "$root"/etc/ssh/ssh_host_*
install -d "$root/etc/ssh/sshd_config.d"
printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n' \
    >"$root/etc/ssh/sshd_config.d/plugnode.conf"
in_root systemctl disable ssh.service ssh.socket 2>/dev/null || true
# systemd applies presets to every unit on first boot (machine-id "uninitialized"), and
# Debian's default preset enables everything: keep SSH off through that too.
install -d "$root/etc/systemd/system-preset"
printf '# plugnode image: SSH stays off until turned on through the boot partition.\ndisable ssh.service\ndisable ssh.socket\n' \
    >"$root/etc/systemd/system-preset/10-plugnode.preset"
in_root systemctl enable systemd-networkd.service systemd-resolved.service \
    systemd-timesyncd.service avahi-daemon.service
in_root systemctl enable plugnode.service plugnode-mount.socket \
    plugnode-boot-import.service plugnode-grow-root.service
# No root password: the box is run from its web page and screen (SSH: keys only).
in_root passwd -l root >/dev/null
if command -v systemd-analyze >/dev/null; then
    complaints=$(systemd-analyze verify --root="$root" plugnode.service plugnode-mount.socket \
        plugnode-mount@sda1.service plugnode-fsck@sda1.service plugnode-boot-import.service \
        plugnode-grow-root.service 2>&1) || true
    [[ -z $complaints ]] || die "systemd-analyze verify in the image: $complaints"
    echo "   systemd-analyze verify: the units are fine in the image"
fi

# SPI for the e-ink HAT: our own overlay (Debian ships none), checked against every Pi
# device tree we target, installed where the GPU firmware looks for overlays, and kept
# there across kernel updates.
stage "building the SPI overlay"
install -d "$root/boot/firmware/overlays" "$root/usr/lib/plugnode/overlays"
dtc -@ -q -I dts -O dtb -o "$root/usr/lib/plugnode/overlays/plugnode-spi0.dtbo" "$here/overlays/plugnode-spi0.dts"
cp "$root/usr/lib/plugnode/overlays/plugnode-spi0.dtbo" "$root/boot/firmware/overlays/"
checked=0
for dtb in "$root"/usr/lib/linux-image-*/broadcom/bcm2837-rpi-3-b.dtb \
    "$root"/usr/lib/linux-image-*/broadcom/bcm2837-rpi-3-b-plus.dtb \
    "$root"/usr/lib/linux-image-*/broadcom/bcm2837-rpi-zero-2-w.dtb \
    "$root"/usr/lib/linux-image-*/broadcom/bcm2711-rpi-4-b.dtb; do
    [[ -f $dtb ]] || continue
    merged="$work/$(basename "$dtb")"
    fdtoverlay -i "$dtb" -o "$merged" "$root/usr/lib/plugnode/overlays/plugnode-spi0.dtbo" ||
        die "the SPI overlay does not apply to $(basename "$dtb")"
    [[ $(fdtget "$merged" /soc/spi@7e204000 status) == okay ]] || die "SPI still off in $(basename "$dtb")"
    [[ $(fdtget "$merged" /soc/spi@7e204000/spidev@0 compatible) == rohm,dh2228fv ]] || die "no spidev in $(basename "$dtb")"
    checked=$((checked + 1))
done
((checked >= 3)) || die "found only $checked Raspberry Pi device trees to check the overlay against"
echo "   overlay applies to $checked Raspberry Pi device trees"
install -D -m 0755 /dev/stdin "$root/etc/kernel/postinst.d/z51-plugnode-overlay" <<'EOF'
#!/bin/sh
# Keeps plugnode's SPI overlay on the boot partition after kernel updates.
mkdir -p /boot/firmware/overlays
cp /usr/lib/plugnode/overlays/plugnode-spi0.dtbo /boot/firmware/overlays/
EOF
# Regenerate config.txt and cmdline.txt from /etc/default/raspi-firmware(-custom).
kernel_version=$(basename "$(ls -d "$root"/lib/modules/* | head -1)")
in_root /etc/kernel/postinst.d/z50-raspi-firmware "$kernel_version"
grep -q '^dtoverlay=plugnode-spi0' "$root/boot/firmware/config.txt" || die "config.txt lacks dtoverlay=plugnode-spi0"

if [[ $profile == test ]]; then
    stage "test profile: smoke-test report, console log, known password"
    install -m 0644 "$here/test/plugnode-smoke-report.service" "$root/etc/systemd/system/"
    install -m 0755 "$here/test/smoke-report" "$lib/smoke-report"
    in_root systemctl enable plugnode-smoke-report.service
    # The smoke test reads the journal from the serial console.
    printf '[Journal]\nForwardToConsole=yes\nMaxLevelConsole=info\n' \
        >"$root/etc/systemd/journald.conf.d/plugnode-test-console.conf"
    # The web password, handed over like a user's plugnode-password.txt (smoke-test.sh logs
    # in with it).
    install -m 0600 "$here/test/web-password" "$root/boot/firmware/plugnode-password.txt"
fi

# Each box gets its own machine ID (and so DHCP identity) on its first boot.
echo uninitialized >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root/var/lib/systemd/random-seed"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/tmp/*
cleanup

# --- the disk image -----------------------------------------------------------------------
stage "making the boot (FAT) and root (ext4) file systems"
boot_mib=256
boot_img="$work/boot.vfat"
root_img="$work/root.ext4"
rm -f "$boot_img" "$root_img"
mkfs.vfat -F 32 -n RASPIFIRM -C "$boot_img" $((boot_mib * 1024)) >/dev/null
mcopy -s -p -m -i "$boot_img" "$root"/boot/firmware/* ::
rm -rf "$root"/boot/firmware/*
used_mib=$(du -s --block-size=1M "$root" | cut -f1)
# Room for the file system's own structures and a first boot; the rest comes from the card.
root_mib=$(((used_mib * 115 / 100 + 256 + 3) / 4 * 4))
mkfs.ext4 -q -L RASPIROOT -m 2 -d "$root" "$root_img" "${root_mib}M" >/dev/null

img="$out/$image_name.img"
stage "assembling $img"
rm -f "$img" "$img.xz"
start_mib=4
truncate -s $(((start_mib + boot_mib + root_mib) * 1024 * 1024)) "$img"
sfdisk -q "$img" <<EOF
label: dos
unit: sectors

start=$((start_mib * 2048)), size=$((boot_mib * 2048)), type=c, bootable
start=$(((start_mib + boot_mib) * 2048)), size=$((root_mib * 2048)), type=83
EOF
dd if="$boot_img" of="$img" bs=1M seek=$start_mib conv=notrunc,sparse status=none
dd if="$root_img" of="$img" bs=1M seek=$((start_mib + boot_mib)) conv=notrunc,sparse status=none
rm -rf "$work"

if ((xz)); then
    stage "compressing (xz)"
    xz -T2 -6 -k "$img"
fi
(cd "$out" && sha256sum "$image_name.img"* >"$image_name.sha256")

raw=$(stat -c %s "$img")
alloc=$(($(stat -c %b "$img") * $(stat -c %B "$img")))
echo "== done in $((SECONDS - started)) s: $img"
printf '   raw %d MiB (%d MiB allocated), root file system %d MiB (%d MiB used)\n' \
    $((raw / 1048576)) $((alloc / 1048576)) "$root_mib" "$used_mib"
[[ -f $img.xz ]] && printf '   %s: %d MiB\n' "$img.xz" $(($(stat -c %s "$img.xz") / 1048576))
printf '   plugnode (aarch64): %d bytes\n' "$(stat -c %s "$bins/plugnode")"
