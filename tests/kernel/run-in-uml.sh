#!/usr/bin/env bash
# Boots Debian's user-mode-linux (an IPVS-capable 6.1 kernel as an ordinary process) with the host's / as its
# root filesystem (hostfs), loads the network modules the project needs, runs ONE command as root inside, and
# returns that command's output and exit status to the host.
#
#   tests/kernel/run-in-uml.sh [--mem 1536M] [--timeout 900] [--modules "extra mods"] -- COMMAND [ARGS...]
#
# The command runs with cwd = the caller's cwd, HOME=/tmp, a private /tmp, /run (so `ip netns` works) and /dev.
# Anything it writes outside those goes to the host's filesystem (hostfs). Exit status: the command's, or
# 125 if the guest never reported one (kernel crash, timeout).
#
# Cache (kernel, modules, busybox) lives in $MESH_UML_CACHE (default: <repo>/.uml, gitignored). Everything
# missing is fetched with `apt-get download` + `dpkg-deb -x` — nothing is installed system-wide except the
# host-side tools the guest borrows through hostfs (ipvsadm, iproute2, iptables) when they are absent.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${MESH_UML_CACHE:-$repo/.uml}
mem=1536M
timeout_s=900
extra_modules=${MESH_UML_EXTRA_MODULES:-}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --mem) mem=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --modules) extra_modules="$extra_modules $2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--mem M] [--timeout S] -- command [args...]" >&2; exit 2; }
case "$cache/" in
  /tmp/*|/run/*|/dev/*|/proc/*|/sys/*)
    echo "run-in-uml.sh: MESH_UML_CACHE=$cache is hidden inside the guest (it mounts its own /tmp, /run, /dev); use a path on disk" >&2; exit 2 ;;
esac
[[ $(id -u) -eq 0 ]] || { echo "run-in-uml.sh: needs root (apt-get, and the guest's root is the host's /)" >&2; exit 2; }

log() { echo "[uml] $*" >&2; }

apt_updated=0
apt_get() {
  if ! DEBIAN_FRONTEND=noninteractive apt-get "$@" >/dev/null 2>&1; then
    if [[ $apt_updated -eq 0 ]]; then apt-get update -qq >/dev/null 2>&1 || true; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get "$@" >/dev/null
  fi
}

# --- host-side tools the guest uses through hostfs -------------------------------------------------
need_pkgs=()
command -v ipvsadm >/dev/null || need_pkgs+=(ipvsadm)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v iptables-legacy >/dev/null || need_pkgs+=(iptables)
if [[ ${#need_pkgs[@]} -gt 0 ]]; then log "apt-get install ${need_pkgs[*]}"; apt_get install -y -qq "${need_pkgs[@]}"; fi

# --- kernel, modules, busybox: apt-get download + dpkg-deb -x into the cache -----------------------
root="$cache/root"
if [[ ! -x $root/usr/bin/linux.uml || ! -x $root/bin/busybox ]]; then
  log "fetching user-mode-linux and busybox-static into $cache"
  mkdir -p "$cache/debs" "$root"
  (cd "$cache/debs" && apt_get download user-mode-linux busybox-static)
  for d in "$cache"/debs/user-mode-linux_*.deb "$cache"/debs/busybox-static_*.deb; do dpkg-deb -x "$d" "$root"; done
fi
kernel=$root/usr/bin/linux.uml
busybox=$root/bin/busybox
kver=$(ls "$root/usr/lib/uml/modules" | sort -V | tail -1)
moddir=$root/usr/lib/uml/modules/$kver

# --- modules, dependencies first (modules.dep), ipv6 before anything else --------------------------
modules="ipv6 x_tables ip_tables ip6_tables nf_conntrack nf_nat
  ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_mh ip_vs_sed ip_vs_nq ip_vs_dh ip_vs_fo ip_vs_ovf
  ip_vs_lblc ip_vs_lblcr xt_ipvs
  veth dummy bridge br_netfilter vxlan
  iptable_nat iptable_mangle iptable_filter ip6table_nat ip6table_mangle ip6table_filter
  xt_mark xt_MASQUERADE xt_addrtype xt_conntrack xt_nat xt_REDIRECT xt_tcpudp xt_multiport xt_comment
  xt_statistic $extra_modules"
declare -A seen=()
ordered=()
resolve() { # $1 = path relative to moddir (kernel/...ko)
  local rel=$1 line dep
  [[ -n ${seen[$rel]:-} ]] && return
  seen[$rel]=1
  line=$(grep -m1 "^$rel:" "$moddir/modules.dep" || true)
  for dep in ${line#*:}; do resolve "$dep"; done
  ordered+=("$moddir/$rel")
}
for m in $modules; do
  rel=$(grep -m1 -E "(^|/)${m}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | cut -d: -f1 || true)
  if [[ -z $rel ]]; then
    alt=${m//_/-}; rel=$(grep -m1 -E "(^|/)${alt}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | cut -d: -f1 || true)
  fi
  if [[ -z $rel ]]; then
    grep -qE "/${m}\.ko" "$moddir/modules.builtin" || log "warning: module $m not found in $kver"
    continue
  fi
  resolve "$rel"
done

# --- run directory on hostfs (not /tmp: the guest mounts its own tmpfs there) ----------------------
mkdir -p "$cache/runs"
run=$(mktemp -d "$cache/runs/run.XXXXXX")
trap 'rm -rf "$run"' EXIT
printf '%s\n' "${ordered[@]}" > "$run/modules"
{
  printf 'cd %q\n' "$PWD"
  printf 'exec'; printf ' %q' "$@"; printf '\n'
} > "$run/cmd.sh"
: > "$run/out"

log "booting $kver (mem=$mem, ${#ordered[@]} modules): $*"
start=$(date +%s.%N)
# UML keeps its RAM in a file under TMPDIR; /dev/shm is tmpfs.
set +e
TMPDIR=/dev/shm timeout --foreground -k 10 "$timeout_s" "$kernel" \
  mem="$mem" root=/dev/root rootfstype=hostfs rootflags=/ rw quiet \
  con=null con0=null,fd:2 \
  init="$here/uml-init.sh" MESH_RUN="$run" MESH_BUSYBOX="$busybox" </dev/null >/dev/null 2>"$run/console"
kstatus=$?
set -e
end=$(date +%s.%N)

cat "$run/out"
if [[ -s $run/rc ]]; then
  rc=$(cat "$run/rc")
else
  rc=125
  log "guest did not report an exit status (kernel exit $kstatus); console tail:"
  tail -n 30 "$run/console" >&2 || true
fi
if [[ -s $run/init.log ]]; then grep -v '^ok ' "$run/init.log" >&2 || true; fi
log "guest exit status $rc, wall time $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}') s"
exit "$rc"
