#!/usr/bin/env bash
# Boots Debian's stock kernel (linux-image-amd64, 6.1: IPVS, nf_tables with the ip family, VXLAN, bridge, veth)
# in qemu-system-x86_64 under software emulation (TCG), runs ONE command as root inside, and returns its output
# and exit status to the host. The guest's / is the host's / over 9p, read-only, with a tmpfs overlay: nothing it
# writes reaches the host but the run directory (shared read-write), which carries the output back.
#
#   tests/kernel/run-in-qemu.sh [--mem 2560M] [--smp 2] [--timeout 900] [--modules "extra mods"] -- COMMAND [ARGS...]
#
# Same contract as run-in-uml.sh (cwd, HOME, private /tmp with the checkout visible, exit status 125 when the
# guest reported none). Slower than user-mode-linux (every instruction is emulated) but boots on any x86-64 CPU.
# /dev/kvm on these machines cannot boot a stock kernel, so there is no acceleration to ask for.
#
# Cache: $MESH_UML_CACHE/qemu (default <repo>/.uml/qemu, gitignored): the kernel package, busybox-static and the
# initramfs, fetched with `apt-get download` + `dpkg-deb -x`. qemu-system-x86 is apt-installed when absent.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${MESH_UML_CACHE:-$repo/.uml}
vm_name=qemu
mem=2560M
smp=$(nproc)
timeout_s=900
extra_modules=${MESH_UML_EXTRA_MODULES:-}
no_modules=0
msize=512000
# shellcheck source=vm-lib.sh
. "$here/vm-lib.sh"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --modules) extra_modules="$extra_modules $2"; shift 2 ;;
    --no-modules) no_modules=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--mem M] [--smp N] [--timeout S] -- command [args...]" >&2; exit 2; }
case "$cache/" in
  /run/*|/dev/*|/proc/*|/sys/*)
    # Name what the user chose: the variable if they set it, else the default beside the checkout.
    if [[ -n ${MESH_UML_CACHE:-} ]]; then what="MESH_UML_CACHE=$cache"; else what="the cache $cache (the default, beside the checkout)"; fi
    echo "run-in-qemu.sh: $what is hidden inside the guest (it mounts its own /run, /dev); set MESH_UML_CACHE to a directory on disk or under /tmp" >&2; exit 2 ;;
esac
[[ $(id -u) -eq 0 ]] || { echo "run-in-qemu.sh: needs root (apt-get, 9p passthrough of the run directory)" >&2; exit 2; }

ensure_host_tools qemu-system-x86 ipvsadm iproute2 iptables nftables kmod

# --- kernel + modules, busybox: apt-get download + dpkg-deb -x into the cache -------------------------
qc=$cache/qemu
root=$qc/root
if ! compgen -G "$root/boot/vmlinuz-*" >/dev/null || [[ ! -x $root/bin/busybox ]]; then
  # linux-image-amd64 is a metapackage: download the versioned image it depends on.
  image=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
  if [[ -z $image ]]; then apt-get update -qq >/dev/null 2>&1 || true; apt_updated=1
    image=$(apt-cache depends linux-image-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
  fi
  [[ -n $image ]] || { echo "run-in-qemu.sh: apt-cache knows no linux-image-amd64" >&2; exit 1; }
  vm_log "fetching $image and busybox-static into $qc"
  rm -rf "$qc"
  fetch_debs "$qc" "$image" busybox-static
fi
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
kver=${kernel##*/vmlinuz-}
moddir=$root/lib/modules/$kver
busybox=$root/bin/busybox
# The package ships no modules.dep (its postinst runs depmod): make one inside the cache.
[[ -f $moddir/modules.dep ]] || depmod -b "$root" "$kver"
[[ -f $moddir/modules.dep ]] || { echo "run-in-qemu.sh: $moddir/modules.dep missing (a broken cache? remove $qc)" >&2; exit 1; }

# --- initramfs: busybox, the modules to reach 9p and overlayfs, the init script (rebuilt when any changes) ---
initrd=$qc/initramfs-$kver.cpio.gz
boot_modules="virtio_pci virtio_ring 9pnet_virtio 9p overlay"
if [[ ! -s $initrd || $initrd -ot $here/qemu-initramfs-init.sh || $initrd -ot $busybox ]]; then
  vm_log "building $initrd"
  staging=$(mktemp -d "$qc/initramfs.XXXXXX")
  mkdir -p "$staging"/{bin,modules,proc,sys,dev}
  cp "$busybox" "$staging/bin/busybox"
  cp "$here/qemu-initramfs-init.sh" "$staging/init"
  chmod 755 "$staging/init"
  # shellcheck disable=SC2086
  resolve_modules "$moddir" $boot_modules | while read -r ko; do
    cp "$ko" "$staging/modules/"; basename "$ko"
  done > "$staging/boot-modules"
  (cd "$staging" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1 > "$initrd.new")
  mv "$initrd.new" "$initrd"
  rm -rf "$staging"
fi

new_run "$@"
# shellcheck disable=SC2086
[[ $no_modules -eq 1 ]] && : > "$run/modules" || resolve_modules "$moddir" $base_modules $extra_modules > "$run/modules"
echo "$moddir" > "$run/modules-tree"

vm_log "booting $kver under TCG (mem=$mem, smp=$smp, $(wc -l < "$run/modules") modules): $*"
start=$(date +%s.%N)
# A guest kernel that locks up is stopped after two minutes of it instead of at the deadline, and says so (exit 86, for
# run-ipvs-tests.sh to boot a fresh one once). Seen once (2026-12-01, 6.1 under TCG, during the ipvs lab's lab up): a
# soft lockup on both vCPUs (a .NET thread and ksoftirqd) from ~480 s until the deadline, in no other of ~15 runs.
( while sleep 10; do
    if grep -qE 'soft lockup - CPU#[0-9]+ stuck for ([0-9]{4,}|[2-9][0-9]{2}|1[2-9][0-9])s' "$run/console" 2>/dev/null; then
      : > "$run/locked-up"
      pkill -TERM -f "qemu-system-x86_64 .*file:$run/console" || true
      exit 0
    fi
  done ) &
watcher=$!
set +e
run_guest timeout -k 10 "$timeout_s" qemu-system-x86_64 \
  -machine pc -accel tcg,thread=multi -cpu max -smp "$smp" -m "$mem" \
  -nographic -no-reboot -nic none -serial "file:$run/console" -monitor none \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 quiet panic=-1 MESH_RUN=$run MESH_GUEST_INIT=$here/guest-init.sh MESH_BUSYBOX=$busybox MESH_MSIZE=$msize MESH_VM=qemu" \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$run,mount_tag=meshrun,security_model=passthrough" \
  </dev/null >/dev/null 2>"$run/qemu.err"
kstatus=$?
kill "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null
set -e
[[ $kstatus -eq 0 ]] || { vm_log "qemu exit $kstatus"; tail -n 5 "$run/qemu.err" >&2 || true; }
rc=0
finish_run "$start" "$(date +%s.%N)" "$kstatus" || rc=$?
if [[ -e $run/locked-up ]]; then
  vm_log "guest kernel locked up: $(grep -m1 'soft lockup' "$run/console" | tr -d '\r'); stopped it"
  exit 86
fi
exit "$rc"
