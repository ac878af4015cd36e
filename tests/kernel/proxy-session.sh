#!/bin/bash
# The README's PROXY v2 session: a 3-node lab, pweb (8083 tcp and udp, proxy=v2) with a task on node 1 and one on
# node 2 (started with `mesh lab run`, as `mesh lab up` starts web.N), curl and a datagram from mesh-client through every node, then what
# the kernel and the relay hold. Takes the lab: run it as  flock /tmp/mesh-lab.lock bash tests/kernel/proxy-session.sh MESH [DATAPLANE]
# (ipvs only inside an IPVS kernel). Ends with lab down.
set -u
MESH=${1:?usage: proxy-session.sh MESH_EXECUTABLE [nftables|ipvs]}
DATAPLANE=${2:-nftables}
api() { echo "\$ mesh --api unix:///run/mesh/lab/$1.sock ${*:2}" | sed 's/--api unix:\/\/\/run\/mesh\/lab\/mesh-n1.sock //'; $MESH "${@:2}" --api unix:///run/mesh/lab/$1.sock; }
client() { echo "\$ ip netns exec mesh-client $*"; ip netns exec mesh-client "$@"; }
$MESH lab down >/dev/null 2>&1
$MESH lab up --nodes 3 --replicas 3 --dataplane "$DATAPLANE" > "${TMPDIR:-/tmp}/proxy-labup.txt" 2>&1 || { cat "${TMPDIR:-/tmp}/proxy-labup.txt"; exit 1; }
echo "=== session ==="
api mesh-n1 service create pweb --publish 8083:80,proxy=v2 --publish 8083:80/udp,proxy=v2
$MESH lab run pweb.1 --node 1 >/dev/null
$MESH lab run pweb.2 --node 2 >/dev/null
sleep 2
api mesh-n1 service ls
for n in 11 12 13 13; do client curl -sS -m 3 http://198.18.0.$n:8083/; done
client bash -c 'exec 3<>/dev/udp/198.18.0.13/8083; printf "who?" >&3; timeout 2 head -n 1 <&3'
echo "=== kernel and relay ==="
if [ "$DATAPLANE" = ipvs ]; then ip netns exec mesh-n3 iptables-save -t nat | grep -E "MESH-INGRESS.*8083"; else ip netns exec mesh-n3 nft list chain ip mesh-host ingress | grep -E "dport 8083"; fi
ip netns exec mesh-n3-ingress nft list map ip mesh published-ports
ip netns exec mesh-n3-ingress ss -ltnup 'sport = :8083'
curl -s --unix-socket /run/mesh/lab/mesh-n3.sock http://mesh/metrics | grep -E '^mesh_proxy_(connections_total|active)' | sort
grep -h "PROXY v2 relay" /run/mesh/lab/mesh-n3.log | tail -3
$MESH lab down
