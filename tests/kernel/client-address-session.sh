#!/bin/bash
# The README's "Client addresses" session: a 3-node lab, web2 (8081, mode=host) with a task on node 1, web3 (8082,
# traffic=local) with a task on node 2 (started as `mesh lab up` starts web.N), curl from mesh-client to every node,
# the health port, the reply route. Takes the lab: run it as  flock /tmp/mesh-lab.lock bash tests/kernel/client-address-session.sh MESH [DATAPLANE]
# (ipvs only inside an IPVS kernel). Ends with lab down.
set -u
MESH=${1:?usage: client-address-session.sh MESH_EXECUTABLE [nftables|ipvs]}
DATAPLANE=${2:-nftables}
api() { echo "\$ mesh --api unix:///run/mesh/lab/$1.sock ${*:2}" | sed 's/--api unix:\/\/\/run\/mesh\/lab\/mesh-n1.sock //'; $MESH "${@:2}" --api unix:///run/mesh/lab/$1.sock; }
client() { echo "\$ ip netns exec mesh-client $*"; ip netns exec mesh-client "$@"; echo "(exit $?)"; }
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
  ip -n $ns addr add $ip/16 dev eth0; ip -n $ns link set eth0 up
}
$MESH lab down >/dev/null 2>&1
$MESH lab up --nodes 3 --replicas 3 --dataplane "$DATAPLANE" > "${TMPDIR:-/tmp}/client-address-labup.txt" 2>&1 || { cat "${TMPDIR:-/tmp}/client-address-labup.txt"; exit 1; }
echo "=== session ==="
api mesh-n1 service create web2 --publish 8081:80,mode=host
api mesh-n1 service create web3 --publish 8082:80,traffic=local
api mesh-n1 service create bad --publish 8084:80,mode=host,traffic=local; echo "(exit $?)"
task web2.1 mesh-n1 >/dev/null 2>&1
task web3.1 mesh-n2 >/dev/null 2>&1
sleep 2
api mesh-n1 service ls
for n in 11 12 13; do client curl -s -m 3 http://198.18.0.$n:8081/; done
for n in 11 12 13; do client curl -s -m 3 http://198.18.0.$n:8082/; done
client curl -s -m 3 http://198.18.0.13:8080/
for n in 11 12 13; do client curl -s -m 3 -w ' %{http_code}\n' http://198.18.0.$n:10256/services/web3; done
echo "=== without the reply rule ==="
ip -n mesh-web2.1 rule del priority 4096
client curl -s -m 3 http://198.18.0.11:8081/
echo "=== kernel ==="
ip netns exec mesh-n1 iptables-save -t nat | grep -E "MESH-INGRESS.*808[12]"
ip netns exec mesh-n1-ingress nft list chain ip mesh svc-web3
ip netns exec mesh-n2-ingress nft list chain ip mesh svc-web3
ip -n mesh-web2.1 rule show priority 4096; ip -n mesh-web2.1 route show table 4096
ip -n mesh-n1 route show 10.255.0.0/16
$MESH lab down
