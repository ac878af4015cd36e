#!/bin/sh
# Processes started by a steady daemon per resync and per change (issue 12: "0 / 0, counted with strace -f -e
# trace=execve"). Brings up the 3-node lab, traces node 3's daemon (every thread, execve only) for a window that
# holds at least one resync (the daemon's --resync-interval is 30 s; its reconcile pass counter from /metrics shows
# the passes that ran), then for a change: a task of node 1 removed and added back through the API (node 3 changes
# its sandbox's backends, FDB and neighbours and its tasks' VIP tables). A process is an execve that returned 0 (the
# failed ones are a search along PATH).
# Usage (as root): flock /tmp/mesh-lab.lock load-tests/daemon-processes.sh [MESH_BINARY] [STEADY_SECONDS]
set -eu
mesh=${1:-artifacts/mesh/mesh}
steady=${2:-40}
node=mesh-n3
sock=/run/mesh/lab/$node.sock
dir=$(mktemp -d /tmp/mesh-daemon-processes.XXXXXX)
trap '"$mesh" lab down >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

passes() { # the daemon's reconcile passes so far (both loops, every result)
  curl -s --unix-socket "$sock" http://mesh/metrics | awk '/^mesh_reconcile_syncs_total/{s += $NF} END{print s + 0}'
}
applied() { curl -s --unix-socket "$sock" http://mesh/v1/info | python3 -c 'import json,sys; print(json.load(sys.stdin)["appliedRevision"])' 2>/dev/null || echo -1; }
trace() { # trace PID OUT: strace attached to every thread of PID; returns once each thread shows a tracer
  strace -f -qq -e trace=execve -e signal=none -o "$2" -p "$1" &
  tracer=$!
  for _ in $(seq 100); do
    untraced=$(grep -l '^TracerPid:[[:space:]]*0$' /proc/"$1"/task/*/status 2>/dev/null | wc -l)
    [ "$untraced" -eq 0 ] && return 0
    sleep 0.1
  done
  echo "strace did not attach to every thread of $1" >&2
  exit 1
}
untrace() { kill -INT "$tracer"; wait "$tracer" || true; }
started() { grep -c 'execve(.*= 0$' "$1" || true; }

"$mesh" lab up >/dev/null
pid=$(pgrep -f -- "daemon --node $node " | head -1)
sleep 5

before=$(passes)
trace "$pid" "$dir/steady.log"
sleep "$steady"
untrace
after=$(passes)
echo "steady, ${steady} s (node 3's daemon, $((after - before)) reconcile passes): $(started "$dir/steady.log") processes started"
grep 'execve(.*= 0$' "$dir/steady.log" | head -10

ip=$(curl -s --unix-socket /run/mesh/lab/mesh-n1.sock http://mesh/v1/state \
  | python3 -c 'import json,sys; print(next(t["addresses"]["ingress"] for t in json.load(sys.stdin)["tasks"] if t["name"] == "web.1"))')
before=$(passes)
trace "$pid" "$dir/change.log"
"$mesh" task rm web.1 --api unix:///run/mesh/lab/mesh-n1.sock >/dev/null
"$mesh" task add web.1 --service web --node mesh-n1 --netns /var/run/netns/mesh-web.1 --ip "ingress=$ip" --api unix:///run/mesh/lab/mesh-n1.sock >/dev/null
want=$(curl -s --unix-socket /run/mesh/lab/mesh-n1.sock http://mesh/v1/state | python3 -c 'import json,sys; print(json.load(sys.stdin)["revision"])')
for _ in $(seq 200); do [ "$(applied)" -ge "$want" ] && break; sleep 0.1; done
[ "$(applied)" -ge "$want" ] || { echo "node 3 did not apply revision $want" >&2; exit 1; }
sleep 1
untrace
after=$(passes)
echo "change (web.1 removed and added back on node 1; node 3 applied revision $want, $((after - before)) passes): $(started "$dir/change.log") processes started"
grep 'execve(.*= 0$' "$dir/change.log" | head -10
