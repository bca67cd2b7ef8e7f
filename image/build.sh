#!/usr/bin/env bash
# Builds the flashable SD-card image of plugnode and the signed update bundle of the same
# build: Debian bookworm arm64 from Debian's package archive (mmdebstrap +
# qemu-user-static), the Raspberry Pi firmware and Debian's arm64 kernel, plugnode and its
# systemd units. The card: p1 FAT (autoboot.txt), two boot slots p2/p3 (FAT), two root
# slots p5/p6 (ext4) and the data partition p7 (ext4, /data), which grows to fill the card
# on first boot; updates are RAUC bundles written to the other slot (see README.md).
#
#   image/build.sh --bitcoin-core PATH/bitcoin-30.2-aarch64-linux-gnu.tar.gz \
#           --signing-key KEY --signing-cert CERT
#       the production image image/out/plugnode.img (+ .img.xz) and bundle
#       image/out/plugnode.raucb. The Bitcoin Core release tarball (download it from
#       bitcoincore.org yourself) must match a SHA-256 pinned in image/bitcoin-core.sha256,
#       and the signing key and certificate (also PLUGNODE_SIGNING_KEY/_CERT) are yours:
#       the image trusts that certificate, the bundle is signed with that key.
#   image/build.sh --profile test
#       the test image image/out/plugnode-test.img and bundle plugnode-test.raucb:
#       regtest-sim instead of Bitcoin Core (regtest), no display, a known web password,
#       signed with the TEST key in image/test/signing/: for the QEMU tests only, never for
#       a real box.
#
# Options: --version X (the release's version, default: appliance's Cargo version),
# --bundle-only (no disk image), --no-xz (skip the compressed image), --skip-cross-build
# (use the binaries already in image/out/aarch64), --from-git REV (build plugnode from a
# clean export of commit REV instead of the working tree), --refresh-base (rebuild the
# cached Debian base even if its inputs did not change), --base-only, --out DIR.
# Test profile only: --broken-plugnode (plugnode replaced by a script that exits 1 at
# start: the update test's bundle that must roll back).
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
version=""
bundle_only=0
broken_plugnode=0
signing_key=${PLUGNODE_SIGNING_KEY:-}
signing_cert=${PLUGNODE_SIGNING_CERT:-}
# The card's disk identifier ("PLUG"): partition n is PARTUUID=504c5547-0n.
disk_id=504c5547
out="$here/out"
cache="${PLUGNODE_IMAGE_CACHE:-/var/tmp/plugnode-image-cache}"
sums_file="${PLUGNODE_BITCOIN_CORE_SUMS:-$here/bitcoin-core.sha256}"
suite=bookworm
mirror="${PLUGNODE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${PLUGNODE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

die() { echo "build.sh: $*" >&2; exit 1; }
usage() { sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; }
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
        --version) version="${2:-}"; shift 2 ;;
        --version=*) version="${1#*=}"; shift ;;
        --bundle-only) bundle_only=1; shift ;;
        --broken-plugnode) broken_plugnode=1; shift ;;
        --signing-key) signing_key="${2:-}"; shift 2 ;;
        --signing-key=*) signing_key="${1#*=}"; shift ;;
        --signing-cert) signing_cert="${2:-}"; shift 2 ;;
        --signing-cert=*) signing_cert="${1#*=}"; shift ;;
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

# The release's version (release.json in the slot and in the bundle; RAUC's bundle version).
if [[ -z $version ]]; then
    version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
    [[ -n $version ]] || die "no version in Cargo.toml's [workspace.package]; pass --version"
fi
[[ $version =~ ^[0-9A-Za-z.+~-]+$ ]] || die "--version '$version': letters, digits and . + ~ - only"
((broken_plugnode == 0)) || [[ $profile == test ]] || die "--broken-plugnode is for the test profile only"
# A broken system is only ever a bundle (the image always starts).
((broken_plugnode == 0)) || bundle_only=1

# Signing: RAUC bundles are signed (X.509/CMS) and the image trusts exactly one
# certificate, its keyring. The test profile uses the committed TEST key; a production
# build needs yours (README.md: "Your own signing key").
test_signing="$here/test/signing"
if [[ $profile == test ]]; then
    [[ -z $signing_key && -z $signing_cert ]] ||
        die "the test profile always signs with the TEST key in image/test/signing/: drop --signing-key/--signing-cert"
    signing_key="$test_signing/test-signing-key.pem"
    signing_cert="$test_signing/test-signing-cert.pem"
else
    if [[ -z $signing_key || -z $signing_cert ]]; then
        cat >&2 <<EOF
build.sh: a production build signs its update bundle and puts the signing certificate on
  the image (the only key its updates will be accepted from). Pass both:
      --signing-key /path/to/signing-key.pem --signing-cert /path/to/signing-cert.pem
  (or PLUGNODE_SIGNING_KEY / PLUGNODE_SIGNING_CERT). image/README.md ("Your own signing
  key") shows how to make them with openssl. The test key in image/test/signing/ is
  refused here: anyone can sign with it.
EOF
        exit 1
    fi
    [[ $signing_key == pkcs11:* || -f $signing_key ]] || die "--signing-key: no file $signing_key"
    [[ -f $signing_cert ]] || die "--signing-cert: no file $signing_cert"
    if [[ $(openssl x509 -in "$signing_cert" -noout -fingerprint -sha256 2>/dev/null) == \
        "$(openssl x509 -in "$test_signing/test-signing-cert.pem" -noout -fingerprint -sha256)" ]]; then
        die "--signing-cert is the public TEST certificate: a production image must not trust it"
    fi
fi
openssl x509 -in "$signing_cert" -noout 2>/dev/null || die "$signing_cert is not a PEM certificate"
if [[ $signing_key != pkcs11:* ]]; then
    [[ $(openssl x509 -in "$signing_cert" -noout -pubkey | sha256sum) == \
        "$(openssl pkey -in "$signing_key" -pubout 2>/dev/null | sha256sum)" ]] ||
        die "the signing key does not belong to the signing certificate $signing_cert"
fi
[[ $(id -u) -eq 0 ]] || die "run as root (mmdebstrap and chroot need it)"

# --- tools --------------------------------------------------------------------------------
need=(mmdebstrap qemu-user-static binfmt-support arch-test mtools dosfstools fdisk e2fsprogs
    device-tree-compiler xz-utils rauc squashfs-tools openssl)
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
    # A/B system updates: RAUC (rauc-service: `rauc install` goes through its D-Bus
    # service), and unsquashfs, which it (and the update helper) uses to
    # read a plain bundle's manifest and release file without mounting it
    rauc rauc-service squashfs-tools
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

stage "installing plugnode $version ($profile profile)"
if ((broken_plugnode)); then
    # The update test's bundle that must roll back: a plugnode that never starts.
    install -D -m 0755 /dev/stdin "$root/usr/local/bin/plugnode" <<'EOF'
#!/bin/sh
# TEST ONLY (image/build.sh --broken-plugnode): a deliberately broken plugnode that exits
# at start, so the update test can watch the box give up on this system and go back.
echo "plugnode: deliberately broken test build, exiting at start" >&2
exit 1
EOF
else
    install -D -m 0755 "$bins/plugnode" "$root/usr/local/bin/plugnode"
fi
lib="$root/usr/local/lib/plugnode"
install -d "$lib"
for script in poweroff-if-asked mount-helper boot-import grow-data update-helper rauc-tryboot \
    rauc-post-install; do
    install -m 0755 "$repo/systemd/$script" "$lib/$script"
done
units=(plugnode.service plugnode-mount.socket plugnode-mount@.service plugnode-fsck@.service
    plugnode-boot-import.service plugnode-grow-data.service plugnode-update.socket
    plugnode-update@.service plugnode-trial-failed.service plugnode-trial-deadline.service
    plugnode-trial-deadline.timer)
for unit in "${units[@]}"; do
    install -m 0644 "$repo/systemd/$unit" "$root/etc/systemd/system/$unit"
done
# plugnode.service is plugnode's; the root side of updates adds its OnFailure= here.
install -D -m 0644 "$repo/systemd/plugnode-service-update.conf" \
    "$root/etc/systemd/system/plugnode.service.d/update.conf"
install -D -m 0644 "$repo/systemd/60-plugnode.rules" "$root/etc/udev/rules.d/60-plugnode.rules"
install -D -m 0644 "$repo/systemd/plugnode.sysusers" "$root/usr/lib/sysusers.d/plugnode.conf"
install -D -m 0644 "$repo/systemd/plugnode.tmpfiles" "$root/usr/lib/tmpfiles.d/plugnode.conf"
install -D -m 0644 "$repo/README.md" "$root/usr/share/doc/plugnode/README.md"
install -D -m 0644 "$repo/systemd/README.md" "$root/usr/share/doc/plugnode/systemd.md"
in_root systemd-sysusers
install -d -m 0755 "$root/media/plugnode"

# Updates: RAUC's configuration, the one certificate bundles must be signed with, and what
# this release is (the same file goes into the bundle as plugnode-release.json).
install -D -m 0644 "$repo/systemd/rauc-system.conf" "$root/etc/rauc/system.conf"
install -D -m 0644 "$signing_cert" "$root/etc/rauc/keyring.pem"
# Debian's D-Bus policy lets any local user drive RAUC: here only root may (the helper).
install -D -m 0644 "$repo/systemd/rauc-dbus-root-only.conf" "$root/etc/dbus-1/system.d/plugnode-rauc.conf"
data_format=1
release_json=$(printf '{"version": "%s", "architecture": "arm64", "data_format": %d, "notes": "%s"}' \
    "$version" "$data_format" "plugnode $version ($profile profile$( ((broken_plugnode)) && echo ', BROKEN on purpose: plugnode exits at start'))")
install -d -m 0755 "$root/usr/lib/plugnode"
printf '%s\n' "$release_json" >"$root/usr/lib/plugnode/release.json"
# Debian's rauc may mark every booted slot good by itself; plugnode decides that here.
in_root systemctl mask rauc-mark-good.service >/dev/null 2>&1 || true
# Where the data partition is mounted, and plugnode's data directory on it.
install -d -m 0755 "$root/data"
install -d -m 0711 "$root/var/lib/plugnode"

install -d "$root/etc/plugnode"
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
# No line for /: the root slot is the one the kernel command line names
# (root=PARTUUID=…-05 or -06); the initramfs checks it (fsck) and mounts it read-write.
cat >"$root/etc/fstab" <<EOF
# <file system>         <mount point>      <type> <options>                              <dump> <pass>
# The card's first partition (autoboot.txt: which slot boots) and the user's drop-ins;
# readable by root only: users drop a password file there.
PARTUUID=$disk_id-01    /boot/firmware     vfat   rw,noatime,umask=0077,nofail           0      2
# Everything that survives updates and rollbacks: plugnode's data, the chain, RAUC's status.
PARTUUID=$disk_id-07    /data              ext4   rw,noatime,errors=remount-ro           0      2
/data/plugnode          /var/lib/plugnode  none   bind,x-systemd.requires-mounts-for=/data 0    0
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
in_root systemctl enable plugnode.service plugnode-mount.socket plugnode-update.socket \
    plugnode-boot-import.service plugnode-grow-data.service plugnode-trial-deadline.timer
# No root password: the box is run from its web page and screen (SSH: keys only).
in_root passwd -l root >/dev/null
if command -v systemd-analyze >/dev/null; then
    complaints=$(systemd-analyze verify --root="$root" plugnode.service plugnode-mount.socket \
        plugnode-mount@sda1.service plugnode-fsck@sda1.service plugnode-boot-import.service \
        plugnode-grow-data.service plugnode-update.socket plugnode-update@0.service \
        plugnode-trial-failed.service plugnode-trial-deadline.timer \
        plugnode-trial-deadline.service 2>&1) || true
    [[ -z $complaints ]] || die "systemd-analyze verify in the image: $complaints"
    echo "   systemd-analyze verify: the units are fine in the image"
fi

# SPI for the e-ink HAT: our own overlay (Debian ships none), checked against every Pi
# device tree we target, installed where the GPU firmware looks for overlays.
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

# The boot slot's files (firmware, kernel, initrd, device trees, config.txt, cmdline.txt),
# generated once here by raspi-firmware's own hook for slot A (rauc-post-install points a
# copy written to slot B at B). root= names the slot's partition, rauc.slot= tells RAUC
# which slot is booted.
printf '%s\n' "ROOTPART=PARTUUID=$disk_id-05" 'CONSOLES="tty0 ttyS1,115200"' >"$root/etc/default/raspi-firmware"
kernel_version=$(basename "$(ls -d "$root"/lib/modules/* | head -1)")
# (The hook only acts when called as dpkg would call it, "configure".)
in_root env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware "$kernel_version"
grep -q '^dtoverlay=plugnode-spi0' "$root/boot/firmware/config.txt" || die "config.txt lacks dtoverlay=plugnode-spi0"
sed -i "s/ *\$/ rauc.slot=A/" "$root/boot/firmware/cmdline.txt"
grep -q "root=PARTUUID=$disk_id-05 .*rauc.slot=A" "$root/boot/firmware/cmdline.txt" ||
    die "cmdline.txt does not name slot A: $(cat "$root/boot/firmware/cmdline.txt")"
# On this card the boot files change only with a system update (a RAUC bundle writes the
# whole boot slot), never from inside a running system: raspi-firmware's hooks would copy
# kernels into /boot/firmware, which is the small first partition here, not a slot.
for hook in /etc/kernel/postinst.d/z50-raspi-firmware /etc/kernel/postrm.d/z50-raspi-firmware \
    /etc/initramfs/post-update.d/z50-raspi-firmware; do
    [[ -e $root$hook ]] || continue
    in_root dpkg-divert --quiet --local --rename --divert "$hook.plugnode-disabled" --add "$hook"
    install -m 0755 /dev/stdin "$root$hook" <<'EOF'
#!/bin/sh
# plugnode: the boot files are part of each system slot and change only with a system
# update (a signed RAUC bundle), so raspi-firmware's hook is disabled here (dpkg-divert).
exit 0
EOF
done

if [[ $profile == test ]]; then
    stage "test profile: smoke-test report, console log"
    install -m 0644 "$here/test/plugnode-smoke-report.service" "$root/etc/systemd/system/"
    install -m 0755 "$here/test/smoke-report" "$lib/smoke-report"
    in_root systemctl enable plugnode-smoke-report.service
    # The smoke test reads the journal from the serial console.
    printf '[Journal]\nForwardToConsole=yes\nMaxLevelConsole=info\n' \
        >"$root/etc/systemd/journald.conf.d/plugnode-test-console.conf"
fi

# Each box gets its own machine ID (and so DHCP identity) on its first boot.
echo uninitialized >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root/var/lib/systemd/random-seed"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/tmp/*
cleanup

# --- the file systems ---------------------------------------------------------------------
# Sizes in MiB. The slots are fixed for the life of the card (every later bundle must fit);
# the data partition is small here and grows to the card on first boot.
firm_mib=32
boot_slot_mib=256
root_slot_mib=1536
data_mib=128
stage "making the boot slot (FAT) and root slot (ext4) file systems"
bootfs="$work/bootfs"
mv "$root/boot/firmware" "$bootfs"
install -d -m 0755 "$root/boot/firmware"
boot_img="$work/boot.vfat"
root_img="$work/root.ext4"
mkfs.vfat -F 32 -n PLUGBOOT -C "$boot_img" $((boot_slot_mib * 1024)) >/dev/null
mcopy -s -p -m -i "$boot_img" "$bootfs"/* ::
used_mib=$(du -s --block-size=1M "$root" | cut -f1)
# The bundle's root image: its files plus room for a first boot; RAUC grows it to the slot
# (resize=true), and so does this script for the image's slot A.
root_mib=$(((used_mib * 115 / 100 + 256 + 3) / 4 * 4))
((root_mib <= root_slot_mib)) || die "the root file system needs $root_mib MiB, the slot has $root_slot_mib"
# errors=remount-ro in the superblock: the root has no fstab line to carry it.
mkfs.ext4 -q -L plugnode-root -e remount-ro -m 2 -d "$root" "$root_img" "${root_mib}M" >/dev/null

# --- the update bundle --------------------------------------------------------------------
# The image's own bundle beside it; a bundle-only build (another version of the same code,
# the broken one) names its version, so it never replaces the image's.
bundle="$out/$image_name.raucb"
((bundle_only)) && bundle="$out/$image_name-$version.raucb"
((broken_plugnode)) && bundle="$out/$image_name-$version-broken.raucb"
stage "signing the update bundle $bundle ($version)"
bundle_dir="$work/bundle"
install -d "$bundle_dir"
cp --sparse=always "$boot_img" "$bundle_dir/boot.vfat"
cp --sparse=always "$root_img" "$bundle_dir/root.ext4"
printf '%s\n' "$release_json" >"$bundle_dir/plugnode-release.json"
cat >"$bundle_dir/manifest.raucm" <<EOF
[update]
compatible=plugnode-rpi-arm64
version=$version
description=plugnode $version$( ((broken_plugnode)) && echo ' (TEST: broken on purpose)')

[bundle]
format=plain

[image.boot]
filename=boot.vfat

[image.rootfs]
filename=root.ext4
EOF
rm -f "$bundle"
# zstd: small to download, quick to unpack on a Pi (Debian's kernel reads zstd squashfs).
rauc bundle --cert="$signing_cert" --key="$signing_key" \
    --mksquashfs-args="-comp zstd -b 1M" "$bundle_dir" "$bundle" >/dev/null
# Read it back as a box would (its system.conf's keyring rules, this certificate).
sed -e "s|^path=.*|path=$signing_cert|" -e 's/^bootloader=.*/bootloader=noop/' \
    -e '/^statusfile=/d' -e '/^\[handlers\]/,$d' "$repo/systemd/rauc-system.conf" >"$work/check.conf"
rauc info --conf="$work/check.conf" --output-format=shell "$bundle" 2>/dev/null |
    grep -q "^RAUC_MF_VERSION='$version'" || die "rauc info does not read back $bundle with the image's keyring"
rm -rf "$bundle_dir"

if ((bundle_only)); then
    rm -rf "$work"
    echo "== done in $((SECONDS - started)) s: $bundle ($(($(stat -c %s "$bundle") / 1048576)) MiB, $version)"
    exit 0
fi

# --- the disk image -----------------------------------------------------------------------
stage "making the first partition (autoboot.txt) and the data partition"
firm_img="$work/firm.vfat"
# FAT16: 32 MiB is too small for FAT32; the Pi firmware reads both.
mkfs.vfat -F 16 -n RASPIFIRM -C "$firm_img" $((firm_mib * 1024)) >/dev/null
firmfs="$work/firmfs"
install -d "$firmfs"
# The firmware reads autoboot.txt here and starts the default slot (p2, A) or, once after
# `reboot "0 tryboot"`, the [tryboot] one. Pi 3 / Zero 2 W start from bootcode.bin, which
# must be on the first partition; config.txt is empty (each slot has its own).
printf '[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n' >"$firmfs/autoboot.txt"
: >"$firmfs/config.txt"
cp "$bootfs/bootcode.bin" "$firmfs/"
if [[ $profile == test ]]; then
    # The web password, handed over like a user's plugnode-password.txt (smoke-test.sh logs
    # in with it).
    install -m 0600 "$here/test/web-password" "$firmfs/plugnode-password.txt"
fi
mcopy -s -p -m -i "$firm_img" "$firmfs"/* ::
datafs="$work/datafs"
install -d -m 0755 "$datafs" "$datafs/update"
# plugnode's data directory (bind-mounted at /var/lib/plugnode), owned by its user.
install -d -m 0711 "$datafs/plugnode"
chown "$(awk -F: '$1 == "plugnode" { print $3 }' "$root/etc/passwd"):$(awk -F: '$1 == "plugnode" { print $3 }' "$root/etc/group")" \
    "$datafs/plugnode"
data_img="$work/data.ext4"
mkfs.ext4 -q -L PLUGDATA -m 1 -d "$datafs" "$data_img" "${data_mib}M" >/dev/null
# Slot A's root as large as its slot (RAUC does the same for every slot it writes).
resize2fs -f "$root_img" "${root_slot_mib}M" >/dev/null 2>&1

img="$out/$image_name.img"
stage "assembling $img"
rm -f "$img" "$img.xz"
# p1 at 4 MiB; p4 (extended) holds p5, p6, p7, each after a 1 MiB gap for its EBR.
p1=4
p2=$((p1 + firm_mib))
p3=$((p2 + boot_slot_mib))
p4=$((p3 + boot_slot_mib))
p5=$((p4 + 1))
p6=$((p5 + root_slot_mib + 1))
p7=$((p6 + root_slot_mib + 1))
end=$((p7 + data_mib))
truncate -s $((end * 1024 * 1024)) "$img"
sfdisk -q "$img" <<EOF
label: dos
label-id: 0x$disk_id
unit: sectors

start=$((p1 * 2048)), size=$((firm_mib * 2048)), type=c, bootable
start=$((p2 * 2048)), size=$((boot_slot_mib * 2048)), type=c
start=$((p3 * 2048)), size=$((boot_slot_mib * 2048)), type=c
start=$((p4 * 2048)), type=5
start=$((p5 * 2048)), size=$((root_slot_mib * 2048)), type=83
start=$((p6 * 2048)), size=$((root_slot_mib * 2048)), type=83
start=$((p7 * 2048)), size=$((data_mib * 2048)), type=83
EOF
dd if="$firm_img" of="$img" bs=1M seek=$p1 conv=notrunc,sparse status=none
dd if="$boot_img" of="$img" bs=1M seek=$p2 conv=notrunc,sparse status=none
dd if="$root_img" of="$img" bs=1M seek=$p5 conv=notrunc,sparse status=none
dd if="$data_img" of="$img" bs=1M seek=$p7 conv=notrunc,sparse status=none
# Slot B (p3, p6) stays empty until the first update writes it.
rm -rf "$work"

if ((xz)); then
    stage "compressing (xz)"
    xz -T2 -6 -k "$img"
fi
(cd "$out" && sha256sum "$image_name.img"* "$image_name.raucb" >"$image_name.sha256")

raw=$(stat -c %s "$img")
alloc=$(($(stat -c %b "$img") * $(stat -c %B "$img")))
echo "== done in $((SECONDS - started)) s: $img and $bundle ($version)"
printf '   raw %d MiB (%d MiB allocated), root file system %d MiB (%d MiB used) in a %d MiB slot\n' \
    $((raw / 1048576)) $((alloc / 1048576)) "$root_mib" "$used_mib" "$root_slot_mib"
[[ -f $img.xz ]] && printf '   %s: %d MiB\n' "$img.xz" $(($(stat -c %s "$img.xz") / 1048576))
printf '   %s: %d MiB\n' "$bundle" $(($(stat -c %s "$bundle") / 1048576))
printf '   plugnode (aarch64): %d bytes\n' "$(stat -c %s "$bins/plugnode")"
