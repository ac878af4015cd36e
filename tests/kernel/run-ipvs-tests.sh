#!/usr/bin/env bash
# CI entry for everything that needs an IPVS kernel: builds tests/Mesh.Ipvs.KernelTests and the mesh executable,
# picks the kernel (run-in-vm.sh: user-mode-linux where it boots, else qemu; MESH_KERNEL_VM=uml|qemu forces one),
# boots it ONCE (the runner fetches/installs what it needs) and runs inside it
#   1. the Mesh.Ipvs kernel tests (each in a fresh network namespace, cross-checked with ipvsadm and /proc/net/ip_vs),
#      summary "N passed, M failed";
#   2. the whole lab with --dataplane ipvs (tests/kernel/ipvs-lab-test.sh), summary "ipvs-lab: N passed, M failed";
#      under qemu also the switch between the ipvs and nftables dataplanes on one node and back.
# Ends with "ipvs-kernel: uml|qemu — why". Exits non-zero on any failure.
#
#   bash tests/kernel/run-ipvs-tests.sh                 # both (~6 min incl. build; the lab is ~4.5 min of it)
#   bash tests/kernel/run-ipvs-tests.sh --kernel-only   # only the Mesh.Ipvs kernel tests (~1 min incl. build)
#   bash tests/kernel/run-ipvs-tests.sh --lab-only      # only the ipvs lab
#   bash tests/kernel/run-ipvs-tests.sh --filter Batch  # only kernel tests whose name contains "Batch"
#   bash tests/kernel/run-ipvs-tests.sh --bench [N] [M] # benchmark N services x M destinations (default 1000 x 10)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

mode=test
kernel=1
lab=1
args=()
case "${1:-}" in
  --bench) mode=bench; lab=0; args=("${2:-1000}" "${3:-10}") ;;
  --filter) lab=0; args=("${2:?--filter needs a value}") ;;
  --kernel-only) lab=0 ;;
  --lab-only) kernel=0 ;;
  "") ;;
  *) echo "usage: $0 [--kernel-only | --lab-only | --filter NAME | --bench [N] [M]]" >&2; exit 2 ;;
esac

command -v dotnet >/dev/null || { echo "run-ipvs-tests.sh: dotnet (SDK 10) is required on the host" >&2; exit 2; }

# MESH_PREBUILT=1 (test.sh, after its build of Mesh.sln, which holds both projects): nothing to build again.
prebuilt=${MESH_PREBUILT:-}
if [[ -z $prebuilt ]]; then
  echo "[ipvs] building tests/Mesh.Ipvs.KernelTests and src/Mesh.Ingress (Release)" >&2
  dotnet build tests/Mesh.Ipvs.KernelTests -c Release --nologo -v quiet -clp:ErrorsOnly
fi
bin=$repo/tests/Mesh.Ipvs.KernelTests/bin/Release/net10.0/Mesh.Ipvs.KernelTests
[[ -x $bin ]] || { echo "run-ipvs-tests.sh: $bin was not built" >&2; exit 1; }

out=$(mktemp)
meshdir=
trap 'rm -f "$out"; [[ -z $meshdir ]] || rm -rf "$meshdir"' EXIT
choice_ok=1
# MESH_VM_CHOICE_TESTED=1: another run-ipvs-tests.sh of the same CI run checked the choice (test.sh's qemu re-run).
if [[ $mode == test && -z ${MESH_VM_CHOICE_TESTED:-} ]]; then bash "$here/vm-choice-test.sh" || choice_ok=0; fi
IFS=$'\t' read -r vm why < <(bash "$here/run-in-vm.sh" --which)
[[ -n $vm ]] || { echo "ipvs-kernel: none — $why"; exit 1; }
echo "[ipvs] kernel: $vm ($why)" >&2

if [[ $lab -eq 1 ]]; then
  # A private copy: the guest reads it through hostfs for minutes, while builds on the host may rewrite bin/.
  cache=${MESH_UML_CACHE:-$repo/.uml}
  mkdir -p "$cache"
  meshdir=$(mktemp -d "$cache/mesh-bin.XXXXXX")
  if [[ $vm == qemu ]]; then
    # qemu emulates every instruction, the JIT's included: mesh compiled ahead (ReadyToRun, the same code), which
    # ipvs-lab-test.sh runs with tiered compilation off, spends far less of the guest's CPU compiling (see there).
    # Published even with MESH_PREBUILT: ~1-1.5 min on 2 cores, against more saved in the guest.
    echo "[ipvs] publishing mesh ReadyToRun for the emulated guest" >&2
    dotnet publish src/Mesh.Ingress -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true \
      -o "$meshdir" --nologo -v quiet -clp:ErrorsOnly
    # Checked on the host first (under a second): the publish reuses obj/Release/net10.0/linux-x64, and one left there
    # by a self-contained composite publish made this one abort at start without a word, seen only minutes later in the guest.
    if ! "$meshdir/mesh" --help >/dev/null 2>&1; then
      echo "[ipvs] the ReadyToRun publish in $meshdir does not start on the host (mesh --help failed); remove src/*/obj/Release/net10.0/linux-x64 (left by another RID-specific publish) and run again" >&2
      exit 1
    fi
  else
    [[ -n $prebuilt ]] || dotnet build src/Mesh.Ingress -c Release --nologo -v quiet -clp:ErrorsOnly
    cp -a "$repo/src/Mesh.Ingress/bin/Release/net10.0/." "$meshdir/"
  fi
  # The lab's daemon and task logs, copied out of the guest before its lab down (MESH_IPVS_LAB_LOGS: elsewhere).
  lablogs=${MESH_IPVS_LAB_LOGS:-$repo/artifacts/test-logs/ipvs-lab}
  rm -rf "$lablogs"
fi

# The guest does not inherit this environment: what the lab needs goes on its command line. MESH_LAB_PATIENCE (a
# multiplier of the lab's waits) is passed on when set: on a host at load 30+ qemu's first daemon outlasts the default.
labenv=("MESH_IPVS_LAB_LOGS=${lablogs:-}")
[[ -z ${MESH_LAB_PATIENCE:-} ]] || labenv+=("MESH_LAB_PATIENCE=$MESH_LAB_PATIENCE")
if [[ $mode == bench ]]; then
  cmd=("$bin" bench "${args[@]}")
elif [[ $kernel -eq 1 && $lab -eq 1 ]]; then
  cmd=(env "${labenv[@]}" bash "$here/guest-ci.sh" "$bin" "$meshdir/mesh")
elif [[ $lab -eq 1 ]]; then
  cmd=(env "${labenv[@]}" bash "$here/ipvs-lab-test.sh" "$meshdir/mesh")
else
  cmd=("$bin" test "${args[@]}")
fi

set +e
# The guest's deadline: under qemu/TCG (Intel with AMX) the kernel tests and the ipvs lab took 1,336 s on an idle 2-core
# machine (2026-12-01, full run 20), too near the 1,500 s this was; 40 min still leaves CI's 90 a re-run.
boot_guest() {
  bash "$here/run-in-$vm.sh" --mem 2560M --timeout 2400 -- "${cmd[@]}" | tee "$out"
  return "${PIPESTATUS[0]}"
}
boot_guest
rc=$?
# 86: qemu's guest kernel locked up (run-in-qemu.sh stops it after two minutes of soft lockups): that says nothing about
# Mesh, so a fresh guest runs everything once more, and its result is the result; said in the log either way.
if [[ $rc -eq 86 ]]; then
  echo "[ipvs] the guest kernel locked up (soft lockup, see above): booting a fresh guest once" >&2
  boot_guest
  rc=$?
fi
set -e
echo "ipvs-kernel: $vm — $why"

if [[ $mode == test ]]; then
  ok=1
  if [[ $kernel -eq 1 ]]; then
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1 || true)
    if [[ -z $summary ]]; then
      echo "0 passed, 1 failed"
      echo "[ipvs] the kernel test program did not print its summary (exit $rc)" >&2
      ok=0
    elif [[ $summary != *" 0 failed" ]]; then ok=0; fi
  fi
  if [[ $lab -eq 1 ]]; then
    summary=$(grep -E '^ipvs-lab: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -1 || true)
    if [[ -z $summary ]]; then
      echo "ipvs-lab: 0 passed, 1 failed"
      echo "[ipvs] the lab test did not print its summary (exit $rc)" >&2
      ok=0
    elif [[ $summary != *" 0 failed" ]]; then ok=0; fi
  fi
  [[ $rc -eq 0 && $ok -eq 1 && $choice_ok -eq 1 ]] || exit 1
fi
exit "$rc"
