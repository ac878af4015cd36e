#!/usr/bin/env bash
# The whole test suite: unit/property tests, the lab end to end on this kernel (as root, embedded store
# and etcd), the IPVS tests inside a throw-away IPVS kernel (user-mode-linux, or qemu where user-mode-linux cannot
# boot), and a smoke run of the load-test scenarios.
# Prints one closing line: "tests: N passed, N failed, N skipped; IPVS kernel: uml|qemu — why".
set -uo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh test || exit 1
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
begin=$SECONDS
failed=0

echo "== build"
dotnet build Mesh.sln -c Release --nologo -v quiet -clp:ErrorsOnly || exit 1
echo "   ($((SECONDS - begin)) s, with the packages)"

echo "== dotnet test (unit, property, API, lab end to end)"
# A failed test is shown with its message (up to its stack trace), so a CI log alone tells what went wrong.
# The load generator's own timing tests (RunnerTests: wake-up lag, send lag, coordinated omission) run alone
# afterwards: beside the lab tests' daemons on 2 cores their generator thread was starved in all three attempts.
timing='FullyQualifiedName~Mesh.LoadTests.Tests.RunnerTests'
tests_begin=$SECONDS
for args in "Mesh.sln --filter FullyQualifiedName!~Mesh.LoadTests.Tests.RunnerTests" "load-tests/Mesh.LoadTests.Tests --filter $timing"; do
  # shellcheck disable=SC2086 # two fixed argument lists, split on purpose
  dotnet test $args -c Release --no-build --nologo 2>&1 | tee -a "$log" |
    awk '/^ *Failed [A-Za-z]/ { show = 1; n = 0 } /^ *Stack Trace:/ { show = 0 }
         show && n++ < 12 { print; next } /^ *(Passed!|Failed!|Skipped )|error/ { print }' || true
  [ "${PIPESTATUS[0]}" = 0 ] || failed=1
done
echo "   ($((SECONDS - tests_begin)) s)"

# What follows was built by the solution build above: the kernel runner and the smoke skip their own builds.
export MESH_PREBUILT=1

# The IPVS kernel stage is mostly user-mode-linux, whose guest has one CPU (~9 min, and slower when anything else
# wants that CPU). With two CPUs or more it is pinned to the first, and the load-test smoke, then the qemu re-run, go
# on the second meanwhile (smoke ~4 min, qemu ~1.5 min on one CPU): neither waits for the other, neither takes the
# other's CPU. With one CPU they run one after the other. Outputs are shown afterwards, in this order, as before.
cpus=()
for range in $(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status | tr ',' ' '); do
  case $range in *-*) for ((c = ${range%-*}; c <= ${range#*-}; c++)); do cpus+=("$c"); done ;; *) cpus+=("$range") ;; esac
done
kernel_pin=() side_pin=()
if [ "${#cpus[@]}" -ge 2 ]; then kernel_pin=(taskset -c "${cpus[0]}"); side_pin=(taskset -c "${cpus[1]}"); fi
ipvs_out=$(mktemp) qemu_out=$(mktemp) smoke_out=$(mktemp) stage_times=$(mktemp)
trap 'rm -f "$log" "$ipvs_out" "$qemu_out" "$smoke_out" "$stage_times"' EXIT
timed() { # NAME OUT COMMAND...: runs COMMAND with output to OUT, then records "NAME STATUS SECONDS"
  local name=$1 out=$2 begin=$SECONDS; shift 2
  "$@" > "$out" 2>&1
  echo "$name $? $((SECONDS - begin))" >> "$stage_times"
}
ipvs_stage() { [ -f tests/kernel/run-ipvs-tests.sh ] && timed ipvs "$ipvs_out" "${kernel_pin[@]}" bash tests/kernel/run-ipvs-tests.sh; }
# Where user-mode-linux ran, the IPVS kernel tests run once more under qemu, so both kernels are exercised on every
# machine; qemu's lab run is what machines without a bootable user-mode-linux get. The kernel stage names its kernel
# before it boots it ("[ipvs] kernel: uml (...)"), long before the smoke is done.
qemu_stage() {
  [ -f tests/kernel/run-ipvs-tests.sh ] && [ -z "${MESH_KERNEL_VM:-}" ] || return 0
  until grep -q '^\[ipvs\] kernel: ' "$ipvs_out" || grep -q '^ipvs ' "$stage_times"; do sleep 2; done
  grep -q '^\[ipvs\] kernel: uml ' "$ipvs_out" || return 0
  timed qemu "$qemu_out" "${side_pin[@]}" env MESH_KERNEL_VM=qemu bash tests/kernel/run-ipvs-tests.sh --kernel-only
}
smoke_stage() { [ -f load-tests/smoke.sh ] && timed smoke "$smoke_out" "${side_pin[@]}" bash load-tests/smoke.sh; }
if [ "${#side_pin[@]}" -gt 0 ]; then
  echo "== IPVS kernel tests on CPU ${cpus[0]}; beside them on CPU ${cpus[1]}: the load-test smoke, then the qemu re-run"
  { smoke_stage; qemu_stage; } &
  side=$!
  ipvs_stage
  wait "$side"
else
  ipvs_stage; qemu_stage; smoke_stage
fi
took() { awk -v n="$1" '$1 == n { print $3; exit }' "$stage_times"; }
ok_stage() { awk -v n="$1" '$1 == n { found = 1; exit $2 != 0 } END { if (!found) exit 1 }' "$stage_times"; }

if [ -f tests/kernel/run-ipvs-tests.sh ]; then
  echo "== IPVS kernel tests (user-mode-linux, or qemu where it cannot boot)"
  tee -a "$log" < "$ipvs_out" | tail -n 25
  echo "   ($(took ipvs) s)"
  ok_stage ipvs || failed=1
  if grep -q '^qemu ' "$stage_times"; then
    echo "== IPVS kernel tests under qemu too"
    tee -a "$log" < "$qemu_out" | tail -n 6
    echo "   ($(took qemu) s)"
    ok_stage qemu || failed=1
  fi
fi

if [ -f load-tests/smoke.sh ]; then
  echo "== load tests (smoke)"
  tee -a "$log" < "$smoke_out" | grep -E '^(== |   |note:|load-tests-smoke:)' || true
  echo "   ($(took smoke) s)"
  ok_stage smoke || failed=1
fi

# Sum the per-assembly summaries ("Passed!  - Failed: 0, Passed: 35, Skipped: 0, ...") and the kernel runner's "N passed, N failed".
read -r p f s < <(awk '
  /(Passed|Failed)! +- +Failed: / { gsub(/,/, ""); for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
  /^[a-z-]*:? *[0-9]+ passed, [0-9]+ failed/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed,?$/) p += $(i-1); if ($i ~ /^failed,?$/) f += $(i-1) } }
  END { print p + 0, f + 0, s + 0 }' "$log")
[ "$f" -gt 0 ] && failed=1
[ "$p" -gt 0 ] || { echo "no test ran"; failed=1; }
kernel=$(grep -m1 '^ipvs-kernel: ' "$log" | sed 's/^ipvs-kernel: //')
echo "== $((SECONDS - begin)) s in all"
echo "tests: $p passed, $f failed, $s skipped${kernel:+; IPVS kernel: $kernel}"
exit "$failed"
