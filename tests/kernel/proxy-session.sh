#!/bin/bash
# The README's PROXY v2 session: a 3-node lab, pweb (8083 tcp and udp, proxy=v2) with a task on node 1 and one on
# node 2 (started as `mesh lab up` starts web.N), curl and a datagram from mesh-client through every node, then what
# the kernel and the relay hold. Takes the lab: run it as  flock /tmp/mesh-lab.lock bash tests/kernel/proxy-session.sh MESH [DATAPLANE]
# (ipvs only inside an IPVS kernel). Ends with lab down.
set -u
MESH=${1:?usage: proxy-session.sh MESH_EXECUTABLE [nftables|ipvs]}
DATAPLANE=${2:-nftables}
api() { echo "\$ mesh --api unix:///run/mesh/lab/$1.sock ${*:2}" | sed 's/--api unix:\/\/\/run\/mesh\/lab\/mesh-n1.sock //'; $MESH "${@:2}" --api unix:///run/mesh/lab/$1.sock; }
client() { echo "\$ ip netns exec mesh-client $*"; ip netns exec mesh-client "$@"; }
task() { # name node: what mesh lab up does for web.N
  local name=$1 node=$2 ns=mesh-$1
  ip netns add $ns; ip -n $ns link set lo up
  ip netns exec $ns setsid $MESH lab serve --task $name --node $node --port 80 >/run/mesh/lab/$name.log 2>&1 < /dev/null &
  for i in $(seq 100); do ip netns exec $ns curl -sf -m 1 http://127.0.0.1/ >/dev/null && break; sleep 0.2; done
  local ip=$($MESH task add $name --service ${name%%.*} --node $node --netns /var/run/netns/$ns --api unix:///run/mesh/lab/mesh-n1.sock 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["addresses"]["ingress"])' 2>/dev/null)
  if [ -z "$ip" ]; then ip=$($MESH task ls --json --api unix:///run/mesh/lab/mesh-n1.sock | python3 -c "import json,sys; print([t for t in json.load(sys.stdin) if t['name']=='$name'][0]['addresses']['ingress'])"); fi
  local hv=vh$RANDOM
  ip -n $node link add $hv mtu 1450 type veth peer name eth0 mtu 1450 netns $ns
  ip -n $node link set $hv master mesh-ov-ingress up
  # The MAC follows the address (02:42 + the IPv4 bytes), as every node's static overlay entries expect.
  ip -n $ns link set eth0 address $(printf '02:42:%02x:%02x:%02x:%02x' ${ip//./ })
  ip -n $ns addr add $ip/16 dev eth0; ip -n $ns link set eth0 up
}
$MESH lab down >/dev/null 2>&1
$MESH lab up --nodes 3 --replicas 3 --dataplane "$DATAPLANE" > "${TMPDIR:-/tmp}/proxy-labup.txt" 2>&1 || { cat "${TMPDIR:-/tmp}/proxy-labup.txt"; exit 1; }
echo "=== session ==="
api mesh-n1 service create pweb --publish 8083:80,proxy=v2 --publish 8083:80/udp,proxy=v2
task pweb.1 mesh-n1 >/dev/null 2>&1
task pweb.2 mesh-n2 >/dev/null 2>&1
sleep 2
api mesh-n1 service ls
for n in 11 12 13 13; do client curl -sS -m 3 http://198.18.0.$n:8083/; done
client bash -c 'exec 3<>/dev/udp/198.18.0.13/8083; printf "who?" >&3; timeout 2 head -n 1 <&3'
echo "=== kernel and relay ==="
ip netns exec mesh-n3 iptables-save -t nat | grep -E "MESH-INGRESS.*8083"
ip netns exec mesh-n3-ingress nft list map ip mesh published-ports
ip netns exec mesh-n3-ingress ss -ltnup 'sport = :8083'
curl -s --unix-socket /run/mesh/lab/mesh-n3.sock http://mesh/metrics | grep -E '^mesh_proxy_(connections_total|active)' | sort
grep -h "PROXY v2 relay" /run/mesh/lab/mesh-n3.log | tail -3
$MESH lab down
