#!/bin/sh
# The real `mesh daemon`'s memory with a large cluster in its embedded store (issue 12: "daemon RSS < 150 MB at
# 10,000 services x 10 tasks"). Brings up a 1-node lab, measures node 1's daemon settled, stops it, writes N services
# x T tasks into its store file (N x (T + 1) ingress addresses: the ingress /16 caps it near 64,500) (the tasks on a second node, mesh-n9, so node 1 programs every one as a remote
# backend: sandbox map elements, FDB and neighbour entries on the ingress overlay), starts the same daemon again on
# it and waits until it reports the new revision applied; then prints VmRSS/VmHWM and what the kernel holds.
# Usage (as root): flock /tmp/mesh-lab.lock load-tests/daemon-memory.sh [MESH_BINARY] [N] [T]   (default 10000 x 5)
# With GCDUMP=FILE (and dotnet-gcdump on PATH) it also writes a heap snapshot of the settled daemon there, for
# `dotnet-gcdump report FILE` (where the live heap goes, by type). With LATER=S it samples again every 30 s until S s
# after the revision applied (the steady state through the daemon's periodic resyncs). With SMAPS=1 it prints, idle and loaded, the
# largest mappings by resident size (/proc/PID/smaps: a file's name, or the anonymous kind), for the idle base.
# Why the store file and not the API: the embedded store rewrites its whole file on every change, so 110,000 API
# writes would take hours at this size (BENCHMARKS.md "scale", daemon memory); the daemon reads the file at start.
set -eu
mesh=${1:-artifacts/mesh/mesh}
n=${2:-10000}
t=${3:-5}
store=/run/mesh/lab/store/cluster-state.json
trap '"$mesh" lab down >/dev/null 2>&1 || true' EXIT

daemon_pid() { pgrep -f -- "daemon --node mesh-n1 " | head -1; }
status() { # VmRSS, VmHWM, RssAnon, RssFile of the process; from its /metrics (a scrape: the daemon then also holds the
  # L4 metrics' directory, as a scraped daemon does) the GC's committed bytes and its heap by generation
  grep -E "^(VmRSS|VmHWM|RssAnon|RssFile)" "/proc/$1/status" | tr -s ' \t' ' ' | tr '\n' ' '
  curl -s --unix-socket /run/mesh/lab/mesh-n1.sock http://mesh/metrics | awk -F'[{}"= ]+' '
    /^dotnet_gc_last_collection_memory_committed_size_bytes/{c = $NF}
    /^dotnet_gc_last_collection_heap_size_bytes/{h += $NF; g[$3] = $NF}
    /^dotnet_gc_last_collection_heap_fragmentation_size_bytes/{f += $NF; fr[$3] = $NF}
    END{printf "GC committed: %d kB, heap after the last GC: %d kB (gen0 %d, gen1 %d, gen2 %d, LOH %d, POH %d; free in it %d: gen2 %d, LOH %d)", c / 1024, h / 1024, g["gen0"] / 1024, g["gen1"] / 1024, g["gen2"] / 1024, g["loh"] / 1024, g["poh"] / 1024, f / 1024, fr["gen2"] / 1024, fr["loh"] / 1024}'
}
mappings() { # the 15 mappings (summed by file name; anonymous ones by kind) with the most resident kB
  [ -n "${SMAPS:-}" ] || return 0
  awk '/^[0-9a-f]+-[0-9a-f]+ /{name = ($6 == "" ? "[anonymous]" : $6)} /^Rss:/{rss[name] += $2} END{for (n in rss) printf "%8d kB %s\n", rss[n], n}' "/proc/$1/smaps" | sort -rn | head -15
}
applied() { curl -s --unix-socket /run/mesh/lab/mesh-n1.sock http://mesh/v1/info | python3 -c 'import json,sys; print(json.load(sys.stdin)["appliedRevision"])' 2>/dev/null || echo -1; }

"$mesh" lab up --nodes 1 --replicas 1 >/dev/null
pid=$(daemon_pid)
sleep 5
echo "lab (2 services, 3 tasks): $(status "$pid")"
mappings "$pid"

# The daemon's command line, to start it again as the lab did (in node 1's namespace, a session of its own).
cmdline=$(mktemp /tmp/mesh-daemon-memory.XXXXXX)
cp "/proc/$pid/cmdline" "$cmdline"
kill "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done

python3 - "$store" "$n" "$t" <<'EOF'
import ipaddress, json, sys
path, n, t = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
state = json.load(open(path))
# The ingress network is fixed at 10.255.0.0/16 (ARCHITECTURE.md): VIPs and task addresses from 10.255.1.1 up,
# clear of the lab's own (10.255.0.x); N x (T + 1) must stay under ~64,500.
if n * (t + 1) > 64500:
    sys.exit(f"{n} services x {t} tasks need {n * (t + 1)} ingress addresses: the ingress /16 holds ~64,500 here")
state["nodes"].append({"name": "mesh-n9", "advertiseAddress": "198.18.0.19", "ingressSandboxIp": "10.255.0.250"})
base = int(ipaddress.IPv4Address("10.255.1.1"))
mark = max(s["firewallMark"] for s in state["services"]) + 1
for i in range(n):
    name = f"s{i:05d}"
    state["services"].append({"name": name, "mode": "vip", "ports": [{"published": 20000 + i, "target": 80, "protocol": "tcp"}],
        "routes": [], "healthCheck": None, "lb": "round-robin", "affinity": "none", "networks": [], "aliases": [],
        "vips": {"ingress": str(ipaddress.IPv4Address(base + i))}, "firewallMark": mark + i})
    for k in range(t):
        a = base + n + i * t + k
        state["tasks"].append({"name": f"{name}.{k + 1}", "service": name, "node": "mesh-n9",
            "addresses": {"ingress": str(ipaddress.IPv4Address(a))}, "aliases": [], "netnsPath": None,
            "resolvConfPath": None, "containerId": None, "state": "running"})
state["revision"] += 1
json.dump(state, open(path, "w"))
print(f"store: {n} services x {t} tasks on mesh-n9, revision {state['revision']}, {len(json.dumps(state)) // 1024} KiB")
EOF
revision=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["revision"])' "$store")

start=$(date +%s%N)
# shellcheck disable=SC2046
xargs -0 sh -c 'exec setsid nsenter --net=/run/netns/mesh-n1 -- "$@" >/dev/null 2>&1 </dev/null &' sh <"$cmdline"
rm -f "$cmdline"
until [ "$(applied)" -ge "$revision" ] 2>/dev/null; do
  sleep 1
  [ $(( ($(date +%s%N) - start) / 1000000000 )) -lt 900 ] || { echo "daemon did not apply revision $revision in 900 s" >&2; exit 4; }
done
pid=$(daemon_pid)
echo "applied revision $revision in $(( ($(date +%s%N) - start) / 1000000 )) ms: $(status "$pid")"
sleep 10
echo "10 s later: $(status "$pid")"
# With LATER=S, every 30 s until S s after the revision applied: the steady state, through the periodic resyncs
# (overlay, nftables, the L4 scrape) that a sample 10 s after the start has not met yet.
for later in $(seq 40 30 "${LATER:-0}"); do
  sleep 30
  echo "$later s later: $(status "$pid")"
done
mappings "$pid"
elements() { ip netns exec mesh-n1-ingress nft -j list map ip mesh "$1" | python3 -c 'import json,sys; print(sum(len(x["map"].get("elem", [])) for x in json.load(sys.stdin)["nftables"] if "map" in x))'; }
echo "kernel: sandbox map elements: backends $(elements backends), port-chains $(elements port-chains), published-ports $(elements published-ports)"
if [ -n "${GCDUMP:-}" ]; then
  dotnet-gcdump collect -p "$pid" -o "$GCDUMP" >/dev/null && echo "heap snapshot: $GCDUMP"
  # The snapshot induces a full blocking collection: the heap after it is the live heap plus the free space that
  # collection left (the large object heap is compacted only when the GC settings ask for it), so what it frees
  # against "10 s later" was garbage the GC had not yet collected, and the free space is what it keeps committed.
  echo "after the snapshot's full collection: $(status "$pid")"
fi
