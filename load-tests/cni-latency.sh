#!/bin/sh
# ADD and DEL latency of mesh-cni, as a runtime sees it (wall time of the plugin process, env + stdin), against a
# running lab's node 1. Usage: flock /tmp/mesh-lab.lock load-tests/cni-latency.sh [MESH_BINARY] [RUNS]
# (bring the lab up first: mesh lab up --nodes 2 --replicas 1; and down after). Prints p50/p99 in ms, and the same
# harness around /bin/true (BASE: what starting any process through nsenter costs on this machine right now, so
# figures from a loaded machine can be read as a ratio to it).
set -eu
mesh=${1:-artifacts/mesh/mesh}
runs=${2:-100}
dir=$(mktemp -d /tmp/mesh-cni-bench.XXXXXX)
trap 'rm -rf "$dir"; ip netns del mesh-cni-bench 2>/dev/null || true' EXIT
"$mesh" cni install --api unix:///run/mesh/lab/mesh-n1.sock --bin-dir "$dir/bin" --conf-dir "$dir/net.d" >/dev/null
config='{"cniVersion":"1.0.0","name":"mesh-web","type":"mesh-cni","service":"web","api":"unix:///run/mesh/lab/mesh-n1.sock","mtu":1450}'

call() { # COMMAND ID [PROGRAM] -> prints elapsed ns; fails loudly on a plugin error
  start=$(date +%s%N)
  if ! printf '%s' "$config" | CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/run/netns/mesh-cni-bench CNI_IFNAME=eth0 CNI_PATH="$dir/bin" \
      nsenter --net=/run/netns/mesh-n1 -- "${3:-$dir/bin/mesh-cni}" >"$dir/out" 2>&1; then
    echo "$1 failed: $(cat "$dir/out")" >&2; exit 1
  fi
  echo $(( $(date +%s%N) - start ))
}

i=0
while [ "$i" -lt "$runs" ]; do
  ip netns add mesh-cni-bench
  call ADD "bench$i" >>"$dir/add"
  call DEL "bench$i" >>"$dir/del"
  call ADD "bench$i" /bin/true >>"$dir/base"
  ip netns del mesh-cni-bench
  i=$((i + 1))
done

pct() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((NR * p + 99) / 100); if (i < 1) i = 1; printf "%.0f", v[i] / 1e6 }'; }
echo "runs=$runs ADD p50=$(pct "$dir/add" 50)ms p99=$(pct "$dir/add" 99)ms DEL p50=$(pct "$dir/del" 50)ms p99=$(pct "$dir/del" 99)ms BASE(/bin/true) p50=$(pct "$dir/base" 50)ms p99=$(pct "$dir/base" 99)ms load=$(cut -d' ' -f1-3 /proc/loadavg)"
