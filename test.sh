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
failed=0

echo "== build"
dotnet build Mesh.sln -c Release --nologo -v quiet -clp:ErrorsOnly || exit 1

# The IPVS kernel's run (user-mode-linux, or qemu where it cannot boot; ~10 min, most of it .NET starting inside an
# emulated kernel on one CPU) overlaps the host's own tests, which run at a lower priority so the guest keeps its
# CPU: the suite takes the longer of the two instead of their sum. MESH_TEST_SERIAL=1 runs one after the other.
# Each side writes its own log; both are added to $log for the totals once both are done.
host_log=$(mktemp)
kernel_log=$(mktemp)
trap 'rm -f "$log" "$host_log" "$kernel_log" "$kernel_log.step"' EXIT

kernel_tests() {
  [ -f tests/kernel/run-ipvs-tests.sh ] || return 0
  echo "== IPVS kernel tests (user-mode-linux, or qemu where it cannot boot)"
  bash tests/kernel/run-ipvs-tests.sh > "$kernel_log.step" 2>&1 || echo "FAILED: tests/kernel/run-ipvs-tests.sh"
  tail -n 25 "$kernel_log.step"
  # Where user-mode-linux ran, the IPVS kernel tests run once more under qemu (~1 min), so both kernels are
  # exercised on every machine; qemu's lab run is what machines without a bootable user-mode-linux get.
  if grep -q '^ipvs-kernel: uml ' "$kernel_log.step" && [ -z "${MESH_KERNEL_VM:-}" ]; then
    cp "$kernel_log.step" "$kernel_log.uml"
    echo "== IPVS kernel tests under qemu too"
    MESH_KERNEL_VM=qemu bash tests/kernel/run-ipvs-tests.sh --kernel-only > "$kernel_log.step" 2>&1 || echo "FAILED: tests/kernel/run-ipvs-tests.sh --kernel-only (qemu)"
    tail -n 6 "$kernel_log.step"
    cat "$kernel_log.uml" "$kernel_log.step" > "$kernel_log.all"; rm -f "$kernel_log.uml"
  else
    cp "$kernel_log.step" "$kernel_log.all"
  fi
}

host_tests() {
  echo "== dotnet test (unit, property, API, lab end to end)"
  # A failed test is shown with its message (up to its stack trace), so a CI log alone tells what went wrong.
  dotnet test Mesh.sln -c Release --no-build --nologo > "$host_log.step" 2>&1 || echo "FAILED: dotnet test"
  cat "$host_log.step" >> "$host_log"
  awk '/^ *Failed [A-Za-z]/ { show = 1; n = 0 } /^ *Stack Trace:/ { show = 0 }
       show && n++ < 12 { print; next } /^ *(Passed!|Failed!|Skipped )|error/ { print }' "$host_log.step"
  if [ -f load-tests/smoke.sh ]; then
    echo "== load tests (smoke)"
    bash load-tests/smoke.sh > "$host_log.step" 2>&1 || echo "FAILED: load-tests/smoke.sh"
    cat "$host_log.step" >> "$host_log"
    grep -E '^(== |   |note:|load-tests-smoke:)' "$host_log.step"
  fi
  rm -f "$host_log.step"
}

if [ "${MESH_TEST_SERIAL:-0}" = 1 ]; then
  host_tests | tee "$host_log.out"
  kernel_tests | tee "$kernel_log.out"
else
  kernel_tests > "$kernel_log.out" 2>&1 &
  kernel_pid=$!
  # niced: the guest's single CPU must not wait for the host's tests (the lab inside it has timing bounds)
  export -f host_tests
  export host_log
  nice -n 10 bash -c host_tests | tee "$host_log.out"
  echo "== (waiting for the IPVS kernel tests, started at the same time)"
  wait "$kernel_pid"
  cat "$kernel_log.out"
fi
grep -q '^FAILED: ' "$host_log.out" "$kernel_log.out" && failed=1
cat "$host_log" "$kernel_log.all" >> "$log" 2>/dev/null
rm -f "$host_log.out" "$kernel_log.out" "$kernel_log.all"

# Sum the per-assembly summaries ("Passed!  - Failed: 0, Passed: 35, Skipped: 0, ...") and the kernel runner's "N passed, N failed".
read -r p f s < <(awk '
  /(Passed|Failed)! +- +Failed: / { gsub(/,/, ""); for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
  /^[a-z-]*:? *[0-9]+ passed, [0-9]+ failed/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed,?$/) p += $(i-1); if ($i ~ /^failed,?$/) f += $(i-1) } }
  END { print p + 0, f + 0, s + 0 }' "$log")
[ "$f" -gt 0 ] && failed=1
[ "$p" -gt 0 ] || { echo "no test ran"; failed=1; }
kernel=$(grep -m1 '^ipvs-kernel: ' "$log" | sed 's/^ipvs-kernel: //')
echo "tests: $p passed, $f failed, $s skipped${kernel:+; IPVS kernel: $kernel}"
exit "$failed"
