#!/usr/bin/env bash
# Runs a command as root inside a throw-away IPVS-capable kernel, whichever boots on this machine:
# user-mode-linux (fast, ~2 s to boot, but it panics before init on some CPUs — Intel with AVX-512/AMX) or qemu
# under software emulation (boots on any x86-64 CPU, several times slower).
#
#   tests/kernel/run-in-vm.sh [runner options] -- COMMAND [ARGS...]   # runner options as run-in-uml.sh/run-in-qemu.sh
#   tests/kernel/run-in-vm.sh --which                                  # prints "uml|qemu<TAB>why" and exits
#
# MESH_KERNEL_VM=uml|qemu forces one (no probe); unset or "auto" probes: one user-mode-linux boot running
# /bin/true; if that reports no exit status, qemu is used.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

choose() {
  case "${MESH_KERNEL_VM:-auto}" in
    uml|qemu) printf '%s\tforced by MESH_KERNEL_VM=%s\n' "$MESH_KERNEL_VM" "$MESH_KERNEL_VM"; return ;;
    auto) ;;
    *) echo "run-in-vm.sh: MESH_KERNEL_VM must be uml, qemu or auto (got '$MESH_KERNEL_VM')" >&2; return 2 ;;
  esac
  local probe start end why
  probe=$(mktemp)
  start=$(date +%s.%N)
  if bash "$here/run-in-uml.sh" --mem 256M --no-modules --timeout 120 -- /bin/true >"$probe" 2>&1; then
    end=$(date +%s.%N)
    printf 'uml\tuser-mode-linux booted (probe %.1f s)\n' "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')"
  else
    # Why: the runner's "why:" line (the fp-regs failure seen on Intel hosts, or the panic), else the first line that
    # says so. `|| true`: a probe that printed none of these must still pick qemu, not end this script under set -e.
    why=$({ grep -m1 '^why: ' "$probe" || grep -m1 -E 'panic|failed|error' "$probe"; } | sed 's/^why: //; s/^[[:space:]]*//' | cut -c1-120 || true)
    printf 'qemu\tuser-mode-linux did not boot here (%s)\n' "${why:-no exit status}"
  fi
  rm -f "$probe"
}

if [[ ${1:-} == --which ]]; then choose; exit; fi
IFS=$'\t' read -r vm why < <(choose)
echo "[vm] $vm: $why" >&2
exec bash "$here/run-in-$vm.sh" "$@"
