#!/usr/bin/env bash
# CI entry for the Mesh.Ipvs kernel tests: builds tests/Mesh.Ipvs.KernelTests, boots user-mode-linux ONCE
# (tests/kernel/run-in-uml.sh fetches/installs what it needs), runs the test program inside it against a real
# IPVS (each test in a fresh network namespace, cross-checked with ipvsadm and /proc/net/ip_vs), prints the
# summary line "N passed, M failed" and exits non-zero on any failure.
#
#   bash tests/kernel/run-ipvs-tests.sh                 # the kernel tests (~1 min incl. build)
#   bash tests/kernel/run-ipvs-tests.sh --filter Batch  # only tests whose name contains "Batch"
#   bash tests/kernel/run-ipvs-tests.sh --bench [N] [M] # benchmark N services x M destinations (default 1000 x 10)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

mode=test
args=()
case "${1:-}" in
  --bench) mode=bench; args=("${2:-1000}" "${3:-10}") ;;
  --filter) args=("${2:?--filter needs a value}") ;;
  "") ;;
  *) echo "usage: $0 [--filter NAME | --bench [N] [M]]" >&2; exit 2 ;;
esac

command -v dotnet >/dev/null || { echo "run-ipvs-tests.sh: dotnet (SDK 10) is required on the host" >&2; exit 2; }

echo "[ipvs] building tests/Mesh.Ipvs.KernelTests (Release)" >&2
dotnet build tests/Mesh.Ipvs.KernelTests -c Release --nologo -v quiet -clp:ErrorsOnly
bin=$repo/tests/Mesh.Ipvs.KernelTests/bin/Release/net10.0/Mesh.Ipvs.KernelTests
[[ -x $bin ]] || { echo "run-ipvs-tests.sh: $bin was not built" >&2; exit 1; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
bash "$here/run-in-uml.sh" --timeout 900 -- "$bin" "$mode" "${args[@]}" | tee "$out"
rc=${PIPESTATUS[0]}
set -e

if [[ $mode == test ]]; then
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1 || true)
  if [[ -z $summary ]]; then
    echo "0 passed, 1 failed"
    echo "[ipvs] the test program did not print its summary (exit $rc)" >&2
    exit 1
  fi
  [[ $rc -eq 0 && $summary == *" 0 failed" ]] || exit 1
fi
exit "$rc"
