# Sourced by image/smoke-test.sh and image/update-test.sh: plays the Raspberry Pi
# firmware's part for QEMU, which has none (`-M virt` boots a kernel given on its command
# line). Before each boot, what the firmware would do on a real Pi with this card:
#
#   1. read autoboot.txt on the card's first FAT partition (p1) and take [all]'s
#      boot_partition, or [tryboot]'s if this boot was asked for with the one-shot tryboot
#      flag: the previous boot ended with the kernel's console line
#      "reboot: Restarting system with command '0 tryboot'" (`systemctl reboot "0 tryboot"`;
#      on a Pi that argument reaches the firmware through the mailbox and sets the flag for
#      exactly one boot);
#   2. from that FAT partition, read config.txt's kernel= and initramfs lines and
#      cmdline.txt, and boot that kernel and initrd with that command line.
#
# What it does not emulate: the flag living in the firmware (a power cut or watchdog reset
# of a real Pi clears it; here every boot that did not follow a "0 tryboot" reboot counts as
# plain), the GPU firmware itself (start*.elf, config.txt's other settings, the device tree
# it would pick and patch on -M virt: QEMU's own is used), and the EEPROM's partition
# walk when a slot does not boot at all (here a missing kernel is a test failure). The
# console= arguments are replaced by the virt board's serial port (ttyAMA0).
#
# Needs mtools and sfdisk; no root, no loop devices.

# Byte offset of partition $2 of disk image $1.
fw_partition_offset() {
    sfdisk -J "$1" | python3 -c '
import json, sys
table = json.load(sys.stdin)["partitiontable"]
for p in table["partitions"]:
    if p["node"].endswith(sys.argv[1]) and not p["node"][:-len(sys.argv[1])][-1:].isdigit():
        print(p["start"] * table.get("sectorsize", 512)); break
else:
    sys.exit("no partition " + sys.argv[1])' "$2"
}
# Size in MiB of partition $2 of disk image $1.
fw_partition_mib() {
    sfdisk -J "$1" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]:
    if p["node"].endswith(sys.argv[1]) and not p["node"][:-len(sys.argv[1])][-1:].isdigit():
        print(p["size"] // 2048); break' "$2"
}
# mtools' name for the FAT partition $2 of image $1.
fw_fat() { echo "$1@@$(fw_partition_offset "$1" "$2")"; }

# The partition the firmware boots: fw_boot_partition IMAGE TRYBOOT(0|1).
fw_boot_partition() {
    local section=all
    (($2)) && section=tryboot
    mtype -i "$(fw_fat "$1" 1)" ::autoboot.txt | tr -d '\r' | awk -v want="[$section]" '
        /^\[/ { section = $0; next }
        section == want && /^boot_partition=/ { sub(/^boot_partition=/, ""); value = $0 }
        END { if (value == "") exit 1; print value }'
}
# "[all] N [tryboot] M" of autoboot.txt, for logs.
fw_autoboot_summary() {
    echo "[all] $(fw_boot_partition "$1" 0), [tryboot] $(fw_boot_partition "$1" 1)"
}

# Did the boot whose console log is $1 end by asking for a tryboot?
fw_ended_with_tryboot() {
    tr -d '\r' <"$1" | grep -aq "reboot: Restarting system with command '0 tryboot'"
}

# Copies what the firmware would load from FAT partition $2 of image $1 into directory $3:
# vmlinuz, initrd.img, cmdline.txt (as the slot has it). Fails if the slot has no kernel.
fw_load() {
    local fat kernel initrd
    fat=$(fw_fat "$1" "$2")
    mtype -i "$fat" ::config.txt | tr -d '\r' >"$3/config.txt" || return 1
    kernel=$(sed -n 's/^kernel=//p' "$3/config.txt" | tail -1)
    initrd=$(sed -n 's/^initramfs \([^ ]*\).*/\1/p' "$3/config.txt" | tail -1)
    [[ -n $kernel && -n $initrd ]] || { echo "partition $2: config.txt names no kernel= or initramfs" >&2; return 1; }
    mcopy -o -i "$fat" "::$kernel" "$3/vmlinuz" && mcopy -o -i "$fat" "::$initrd" "$3/initrd.img" &&
        mtype -i "$fat" ::cmdline.txt | tr -d '\r\n' >"$3/cmdline.txt"
}

# The slot's command line for -M virt: its console= arguments replaced by ttyAMA0.
fw_virt_cmdline() {
    local word out=()
    for word in $(cat "$1"); do
        [[ $word == console=* ]] || out+=("$word")
    done
    echo "${out[*]} console=ttyAMA0"
}
