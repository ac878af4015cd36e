#!/usr/bin/env bash
# Boots Debian's user-mode-linux (an IPVS-capable 6.1 kernel as an ordinary process) with the host's / as its
# root filesystem (hostfs), loads the network modules the project needs, runs ONE command as root inside, and
# returns that command's output and exit status to the host.
#
#   tests/kernel/run-in-uml.sh [--mem 1536M] [--timeout 900] [--modules "extra mods"] -- COMMAND [ARGS...]
#
# The command runs with cwd = the caller's cwd, HOME=/tmp/home, a private /tmp (the checkout, the cache and the
# cwd stay visible at their paths), /run (so `ip netns` works) and /dev. Anything it writes elsewhere goes to the
# host's filesystem (hostfs). Exit status: the command's, or 125 if the guest never reported one (kernel crash,
# timeout). user-mode-linux does not boot on every CPU (see README.md); run-in-vm.sh picks qemu where it doesn't.
#
# Cache (kernel, modules, busybox) lives in $MESH_UML_CACHE (default: <repo>/.uml, gitignored). Everything
# missing is fetched with `apt-get download` + `dpkg-deb -x` — nothing is installed system-wide except the
# host-side tools the guest borrows through hostfs (ipvsadm, iproute2, iptables) when they are absent.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${MESH_UML_CACHE:-$repo/.uml}
vm_name=uml
mem=1536M
timeout_s=900
extra_modules=${MESH_UML_EXTRA_MODULES:-}
no_modules=0
# shellcheck source=vm-lib.sh
. "$here/vm-lib.sh"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --mem) mem=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --modules) extra_modules="$extra_modules $2"; shift 2 ;;
    --no-modules) no_modules=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--mem M] [--timeout S] -- command [args...]" >&2; exit 2; }
case "$cache/" in
  /run/*|/dev/*|/proc/*|/sys/*)
    # Name what the user chose: the variable if they set it, else the default beside the checkout.
    if [[ -n ${MESH_UML_CACHE:-} ]]; then what="MESH_UML_CACHE=$cache"; else what="the cache $cache (the default, beside the checkout)"; fi
    echo "run-in-uml.sh: $what is hidden inside the guest (it mounts its own /run, /dev); set MESH_UML_CACHE to a directory on disk or under /tmp" >&2; exit 2 ;;
esac
[[ $(id -u) -eq 0 ]] || { echo "run-in-uml.sh: needs root (apt-get, and the guest's root is the host's /)" >&2; exit 2; }

ensure_host_tools ipvsadm iproute2 iptables

# --- kernel, modules, busybox: apt-get download + dpkg-deb -x into the cache -----------------------
root="$cache/root"
if [[ ! -x $root/usr/bin/linux.uml || ! -x $root/bin/busybox ]]; then
  vm_log "fetching user-mode-linux and busybox-static into $cache"
  fetch_debs "$cache" user-mode-linux busybox-static
fi
# MESH_UML_KERNEL: another kernel binary (vm-choice-test.sh passes one that fails as UML does on Intel AMX hosts).
kernel=${MESH_UML_KERNEL:-$root/usr/bin/linux.uml}
busybox=$root/bin/busybox
kver=$(ls "$root/usr/lib/uml/modules" | sort -V | tail -1)
moddir=$root/usr/lib/uml/modules/$kver

new_run "$@"
# shellcheck disable=SC2086
[[ $no_modules -eq 1 ]] && : > "$run/modules" || resolve_modules "$moddir" $base_modules $extra_modules > "$run/modules"

vm_log "booting $kver (mem=$mem, $(wc -l < "$run/modules") modules): $*"
start=$(date +%s.%N)
# UML keeps its RAM in a file under TMPDIR; /dev/shm is tmpfs.
set +e
TMPDIR=/dev/shm run_guest timeout --foreground -k 10 "$timeout_s" "$kernel" \
  mem="$mem" root=/dev/root rootfstype=hostfs rootflags=/ rw quiet \
  con=null con0=null,fd:2 \
  init="$here/guest-init.sh" MESH_RUN="$run" MESH_BUSYBOX="$busybox" </dev/null >/dev/null 2>"$run/console"
kstatus=$?
set -e
finish_run "$start" "$(date +%s.%N)" "$kstatus"
