#!/usr/bin/env bash
# `systemd-analyze verify` on plugnode's units, in a scratch root that holds this
# machine's systemd units, ours, and stand-ins for the programs they start (the real ones
# are aarch64 binaries inside the image; image/build.sh verifies the units there too).
# Any complaint fails. Needs systemd-analyze (Debian package: systemd).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v systemd-analyze >/dev/null || { echo "verify.sh: systemd-analyze is missing (apt-get install systemd)" >&2; exit 2; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/usr/lib/systemd" "$scratch/etc/systemd/system" "$scratch/usr/local/bin" "$scratch/usr/local/lib/plugnode" "$scratch/usr/sbin"
cp -a /usr/lib/systemd/system "$scratch/usr/lib/systemd/"
units=(plugnode.service plugnode-mount.socket plugnode-mount@.service plugnode-fsck@.service plugnode-boot-import.service plugnode-grow-data.service
    plugnode-update.socket plugnode-update@.service plugnode-trial-failed.service plugnode-trial-deadline.service plugnode-trial-deadline.timer)
for unit in "${units[@]}"; do cp "$here/$unit" "$scratch/etc/systemd/system/"; done
# The root side's drop-in for plugnode.service (its OnFailure= rollback).
mkdir -p "$scratch/etc/systemd/system/plugnode.service.d"
cp "$here/plugnode-service-update.conf" "$scratch/etc/systemd/system/plugnode.service.d/update.conf"
printf '#!/bin/sh\n' >"$scratch/usr/local/bin/plugnode"
printf '#!/bin/sh\n' >"$scratch/usr/sbin/fsck"
for script in poweroff-if-asked mount-helper boot-import grow-data update-helper rauc-tryboot rauc-post-install; do cp "$here/$script" "$scratch/usr/local/lib/plugnode/"; done
chmod +x "$scratch/usr/local/bin/plugnode" "$scratch/usr/sbin/fsck" "$scratch"/usr/local/lib/plugnode/*
names=("${units[@]/plugnode-mount@.service/plugnode-mount@sda1.service}")
names=("${names[@]/plugnode-fsck@.service/plugnode-fsck@sda1.service}")
names=("${names[@]/plugnode-update@.service/plugnode-update@0.service}")
output=$(systemd-analyze verify --root="$scratch" "${names[@]}" 2>&1) || true
if [[ -n $output ]]; then
    echo "$output" >&2
    echo "verify.sh: systemd-analyze verify complained" >&2
    exit 1
fi
echo "systemd-analyze verify: ${names[*]}: OK"
