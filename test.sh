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

# MESH_TEST_SKIP="build dotnet": only the kernel and load-test stages, on what is already built (to time them alone).
skip=" ${MESH_TEST_SKIP:-} "
if [[ $skip != *" build "* ]]; then
echo "== build"
dotnet build Mesh.sln -c Release --nologo -v quiet -clp:ErrorsOnly || exit 1
echo "   ($((SECONDS - begin)) s, with the packages)"
fi

if [[ $skip != *" dotnet "* ]]; then
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
fi

# What follows was built by the solution build above: the kernel runner and the smoke skip their own builds.
export MESH_PREBUILT=1

# The IPVS kernel stage is mostly the ipvs lab under user-mode-linux, whose guest has one CPU (~8 min, and slower when
# anything else wants that CPU). Where user-mode-linux boots and there are two CPUs, that lab runs pinned to the first
# while the second runs, one after the other: the load-test smoke, the Mesh.Ipvs kernel tests in a user-mode-linux
# of their own, and the qemu re-run — neither side waits for the other or takes the other's CPU. Elsewhere (qemu only:
# it uses every CPU; or one CPU) they run one after the other as before. Outputs are shown afterwards, in order.
cpus=()
for range in $(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status | tr ',' ' '); do
  case $range in *-*) for ((c = ${range%-*}; c <= ${range#*-}; c++)); do cpus+=("$c"); done ;; *) cpus+=("$range") ;; esac
done
ipvs_out=$(mktemp) uml_out=$(mktemp) qemu_out=$(mktemp) smoke_out=$(mktemp) stage_times=$(mktemp)
trap 'rm -f "$log" "$ipvs_out" "$uml_out" "$qemu_out" "$smoke_out" "$stage_times"' EXIT
timed() { # NAME OUT COMMAND...: runs COMMAND with output to OUT, then records "NAME STATUS SECONDS"
  local name=$1 out=$2 begin=$SECONDS; shift 2
  "$@" > "$out" 2>&1
  echo "$name $? $((SECONDS - begin))" >> "$stage_times"
}
took() { awk -v n="$1" '$1 == n { print $3; exit }' "$stage_times"; }
ran() { grep -q "^$1 " "$stage_times"; }
ok_stage() { awk -v n="$1" '$1 == n { found = 1; exit $2 != 0 } END { if (!found) exit 1 }' "$stage_times"; }
smoke_stage() { [ -f load-tests/smoke.sh ] && timed smoke "$smoke_out" "$@" bash load-tests/smoke.sh; }
# Where user-mode-linux ran, the IPVS kernel tests run once more under qemu, so both kernels are exercised on every
# machine; qemu's lab run is what machines without a bootable user-mode-linux get.
qemu_stage() { [ -z "${MESH_KERNEL_VM:-}" ] && timed qemu "$qemu_out" "$@" env MESH_KERNEL_VM=qemu bash tests/kernel/run-ipvs-tests.sh --kernel-only; }
vm=
if [ -f tests/kernel/run-ipvs-tests.sh ]; then vm=$(bash tests/kernel/run-in-vm.sh --which 2>/dev/null | cut -f1); fi
if [ "$vm" = uml ] && [ "${#cpus[@]}" -ge 2 ]; then
  echo "== the ipvs lab on CPU ${cpus[0]}; beside it on CPU ${cpus[1]}: the load-test smoke, the kernel tests (user-mode-linux, qemu)"
  {
    smoke_stage taskset -c "${cpus[1]}"
    # run-ipvs-tests.sh --lab-only (beside) checks the kernel choice (vm-choice-test.sh) and names it: not twice.
    timed uml "$uml_out" taskset -c "${cpus[1]}" env MESH_KERNEL_VM=uml MESH_VM_CHOICE_TESTED=1 bash tests/kernel/run-ipvs-tests.sh --kernel-only
    qemu_stage taskset -c "${cpus[1]}"
  } &
  side=$!
  timed ipvs "$ipvs_out" taskset -c "${cpus[0]}" bash tests/kernel/run-ipvs-tests.sh --lab-only
  wait "$side"
else
  if [ -f tests/kernel/run-ipvs-tests.sh ]; then
    timed ipvs "$ipvs_out" bash tests/kernel/run-ipvs-tests.sh
    if grep -q '^ipvs-kernel: uml ' "$ipvs_out"; then qemu_stage; fi
  fi
  smoke_stage
fi

if ran ipvs; then
  echo "== IPVS kernel tests (user-mode-linux, or qemu where it cannot boot)"
  tee -a "$log" < "$ipvs_out" | tail -n 25
  echo "   ($(took ipvs) s)"
  ok_stage ipvs || failed=1
fi
if ran uml; then
  echo "== IPVS kernel tests: the Mesh.Ipvs kernel tests in their own user-mode-linux"
  tee -a "$log" < "$uml_out" | tail -n 4
  echo "   ($(took uml) s)"
  ok_stage uml || failed=1
fi
if ran qemu; then
  echo "== IPVS kernel tests under qemu too"
  tee -a "$log" < "$qemu_out" | tail -n 6
  echo "   ($(took qemu) s)"
  ok_stage qemu || failed=1
fi
if ran smoke; then
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
