# Shared by run-in-uml.sh and run-in-qemu.sh (sourced, not run): the host side of booting a throw-away kernel —
# fetching Debian packages into the cache, resolving module load order, the run directory the guest reports
# through, and collecting the command's output and exit status.
#
# Expects: $here (tests/kernel), $repo, $cache; defines vm_log, apt_get, fetch_debs, resolve_modules,
# new_run, finish_run.

vm_log() { echo "[$vm_name] $*" >&2; }

apt_updated=0
apt_get() {
  if ! DEBIAN_FRONTEND=noninteractive apt-get "$@" >/dev/null 2>&1; then
    if [[ $apt_updated -eq 0 ]]; then apt-get update -qq >/dev/null 2>&1 || true; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get "$@" >/dev/null
  fi
}

# Host-side tools the guest borrows from the host's / (hostfs or 9p); installed only when absent.
ensure_host_tools() {
  local need=() p
  for p in "$@"; do
    case $p in
      ipvsadm) command -v ipvsadm >/dev/null || need+=(ipvsadm) ;;
      iproute2) command -v ip >/dev/null || need+=(iproute2) ;;
      iptables) command -v iptables-legacy >/dev/null || need+=(iptables) ;;
      nftables) command -v nft >/dev/null || need+=(nftables) ;;
      kmod) command -v modprobe >/dev/null || need+=(kmod) ;;
      qemu-system-x86) command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86) ;;
      *) dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p") ;;
    esac
  done
  if [[ ${#need[@]} -gt 0 ]]; then
    vm_log "apt-get install ${need[*]}"
    apt_get install -y -qq --no-install-recommends "${need[@]}"
  fi
}

# fetch_debs DIR PACKAGE... — apt-get download + dpkg-deb -x of each package into DIR/root (nothing installed).
fetch_debs() {
  local dir=$1 d; shift
  mkdir -p "$dir/debs" "$dir/root"
  (cd "$dir/debs" && apt_get download "$@")
  for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$dir/root"; done
}

# resolve_modules MODDIR NAME... — prints the .ko paths to insmod, dependencies first (from modules.dep), each once.
# Names missing from the kernel are warned about unless built in.
resolve_modules() {
  local moddir=$1 m rel alt; shift
  declare -A seen=()
  _resolve() {
    local rel=$1 line dep
    [[ -n ${seen[$rel]:-} ]] && return
    seen[$rel]=1
    line=$(grep -m1 "^$rel:" "$moddir/modules.dep" || true)
    for dep in ${line#*:}; do _resolve "$dep"; done
    echo "$moddir/$rel"
  }
  for m in "$@"; do
    rel=$(grep -m1 -E "(^|/)${m}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | cut -d: -f1 || true)
    if [[ -z $rel ]]; then
      alt=${m//_/-}; rel=$(grep -m1 -E "(^|/)${alt}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | cut -d: -f1 || true)
    fi
    if [[ -z $rel ]]; then
      grep -qE "/${m}\.ko" "$moddir/modules.builtin" || vm_log "warning: module $m not found in $moddir"
      continue
    fi
    _resolve "$rel"
  done
}

# The modules every test kernel loads before the command runs (ipv6 first: the others depend on it).
base_modules="ipv6 x_tables ip_tables ip6_tables nf_conntrack nf_nat
  ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_mh ip_vs_sed ip_vs_nq ip_vs_dh ip_vs_fo ip_vs_ovf
  ip_vs_lblc ip_vs_lblcr xt_ipvs
  veth dummy bridge br_netfilter vxlan
  iptable_nat iptable_mangle iptable_filter ip6table_nat ip6table_mangle ip6table_filter
  xt_mark xt_MASQUERADE xt_addrtype xt_conntrack xt_nat xt_REDIRECT xt_tcpudp xt_multiport xt_comment
  xt_statistic"

# new_run — a run directory under the cache (a path the guest sees and writes), with the command, the modules to
# load and the host paths the guest must keep visible under its private /tmp. Sets $run; removed on exit.
new_run() {
  mkdir -p "$cache/runs"
  run=$(mktemp -d "$cache/runs/run.XXXXXX")
  trap cleanup_run EXIT
  trap 'exit 130' INT TERM HUP
  {
    printf 'cd %q\n' "$PWD"
    printf 'exec'; printf ' %q' "$@"; printf '\n'
  } > "$run/cmd.sh"
  # The guest mounts a fresh tmpfs on /tmp; a checkout, cache or cwd under /tmp is bound back over it.
  printf '%s\n' "$repo" "$cache" "$PWD" > "$run/shares"
  : > "$run/out"
}

# run_guest COMMAND... — runs the VM (under `timeout`) and waits for it; killed with us if we are interrupted.
guest_pid=
run_guest() {
  local status
  "$@" &
  guest_pid=$!
  wait "$guest_pid"
  status=$?
  guest_pid=
  return "$status"
}

# Nothing is left behind: the VM (timeout forwards the signal to it; KILL if it lingers) and the run directory.
cleanup_run() {
  if [[ -n $guest_pid ]] && kill -0 "$guest_pid" 2>/dev/null; then
    kill -TERM "$guest_pid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$guest_pid" 2>/dev/null || break; sleep 0.5; done
    pkill -KILL -P "$guest_pid" 2>/dev/null; kill -KILL "$guest_pid" 2>/dev/null
    wait "$guest_pid" 2>/dev/null
  fi
  rm -rf "$run"
}

# finish_run START END KERNEL_STATUS — prints the command's output, returns its exit status (125: none reported).
finish_run() {
  local start=$1 end=$2 kstatus=$3 rc
  cat "$run/out"
  if [[ -s $run/rc ]]; then
    rc=$(cat "$run/rc")
  else
    rc=125
    vm_log "guest did not report an exit status (kernel exit $kstatus); console tail:"
    # The first line that says why, which a long stack trace can push out of the tail (run-in-vm.sh's probe reads it).
    # (Not any "failed": user-mode-linux prints a harmless "mmapper_init - find_iomem failed" at every boot.)
    grep -m1 -E 'ptrace|Kernel panic' "$run/console" | sed 's/^[[:space:]]*/why: /' >&2 || true
    tail -n 30 "$run/console" >&2 || true
  fi
  if [[ -s $run/init.log ]]; then grep -v '^ok ' "$run/init.log" >&2 || true; fi
  vm_log "guest exit status $rc, wall time $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}') s"
  return "$rc"
}
