#!/bin/sh
# Issue 12's figures table from one run, in one results directory: the scale scenario (cold program, one task
# replaced, the resync paths; no lab), the first-packet cost (10,000 vs 10 services; no lab), a joined daemon's fetch (remote-state; no lab), the real daemon's memory with
# 10,000 services x 5 tasks (daemon-memory.sh), the processes a steady daemon starts per resync and per change
# (daemon-processes.sh) and the convergence of a task added/removed on the embedded store (convergence, 200 cycles: a
# p99 that is not the maximum). One after the other, so that none measures under another's load; about 9 minutes on
# an idle 2-core machine.
# Usage (as root, from the checkout, after `dotnet build Mesh.sln -c Release`; any `./mesh.sh ...` command publishes the
# daemon): load-tests/scale-figures.sh [MESH_BINARY] [OUT_DIR]   (holds /tmp/mesh-lab.lock for the whole run)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mesh=${1:-$here/../artifacts/mesh/mesh}
out=${2:-$here/results/scale-figures-$(date -u +%Y%m%d-%H%M%S)}
loadtests=$here/Mesh.LoadTests/bin/Release/net10.0/Mesh.LoadTests.dll
[ -x "$mesh" ] || { echo "scale-figures: no daemon at $mesh (./mesh.sh publishes it to artifacts/mesh)" >&2; exit 1; }
[ -f "$loadtests" ] || { echo "scale-figures: $loadtests missing: dotnet build Mesh.sln -c Release" >&2; exit 1; }
# The lab's names are machine-wide: hold its lock for the whole run (the convergence scenario sees it held by an
# ancestor), unless an ancestor holds it already (`flock /tmp/mesh-lab.lock load-tests/scale-figures.sh`: taking it
# again would wait for ever).
held_by_ancestor() {
  inode=$(stat -c %i /tmp/mesh-lab.lock 2>/dev/null) || return 1
  pid=$$
  while [ "$pid" -gt 1 ]; do
    grep -q "FLOCK .* $pid [0-9a-f]*:[0-9a-f]*:$inode " /proc/locks && return 0
    pid=$(awk '/^PPid:/{print $2}' "/proc/$pid/status")
  done
  return 1
}
held_by_ancestor || exec flock /tmp/mesh-lab.lock "$0" "$@"
mkdir -p "$out"

step() { # step NAME COMMAND...: runs it with its output in OUT/NAME.txt, timed, the load average beside
  name=$1
  shift
  echo "== $name: $* (load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%S) UTC)" | tee "$out/$name.txt"
  start=$(date +%s)
  "$@" >>"$out/$name.txt" 2>&1 || { echo "   $name failed: see $out/$name.txt" >&2; tail -20 "$out/$name.txt" >&2; exit 1; }
  echo "   $(($(date +%s) - start)) s, load after $(cut -d' ' -f1-3 /proc/loadavg)"
}

step scale dotnet "$loadtests" scale --sizes 1000,10000 -o "$out/scale"
step first-packet dotnet "$loadtests" first-packet --sizes 10,10000 --no-iptables --rounds 20 -d 3s -o "$out/first-packet"
step remote-state dotnet "$loadtests" remote-state -o "$out/remote-state"
step memory "$here/daemon-memory.sh" "$mesh" 10000 5
step processes "$here/daemon-processes.sh" "$mesh"
step convergence dotnet "$loadtests" convergence --stores embedded --cycles 200 -o "$out/convergence"
echo "reports: $out"
