#!/bin/bash
# The README's "Client addresses" session: a 3-node lab, web2 (8081, mode=host) with a task on node 1, web3 (8082,
# traffic=local) with a task on node 2 (started with `mesh lab run`, as `mesh lab up` starts web.N), curl from mesh-client to every node,
# the health port, the reply route. Takes the lab: run it as  flock /tmp/mesh-lab.lock bash tests/kernel/client-address-session.sh MESH [DATAPLANE]
# (ipvs only inside an IPVS kernel). Ends with lab down.
set -u
MESH=${1:?usage: client-address-session.sh MESH_EXECUTABLE [nftables|ipvs]}
DATAPLANE=${2:-nftables}
api() { echo "\$ mesh --api unix:///run/mesh/lab/$1.sock ${*:2}" | sed 's/--api unix:\/\/\/run\/mesh\/lab\/mesh-n1.sock //'; $MESH "${@:2}" --api unix:///run/mesh/lab/$1.sock; }
client() { echo "\$ ip netns exec mesh-client $*"; ip netns exec mesh-client "$@"; echo "(exit $?)"; }
$MESH lab down >/dev/null 2>&1
$MESH lab up --nodes 3 --replicas 3 --dataplane "$DATAPLANE" > "${TMPDIR:-/tmp}/client-address-labup.txt" 2>&1 || { cat "${TMPDIR:-/tmp}/client-address-labup.txt"; exit 1; }
echo "=== session ==="
api mesh-n1 service create web2 --publish 8081:80,mode=host
api mesh-n1 service create web3 --publish 8082:80,traffic=local
api mesh-n1 service create bad --publish 8084:80,mode=host,traffic=local; echo "(exit $?)"
echo "\$ mesh lab run web2.1 --node 1"; $MESH lab run web2.1 --node 1
echo "\$ mesh lab run web3.1 --node 2"; $MESH lab run web3.1 --node 2
sleep 2
api mesh-n1 service ls
for n in 11 12 13; do client curl -s -m 3 http://198.18.0.$n:8081/; done
for n in 11 12 13; do client curl -s -m 3 http://198.18.0.$n:8082/; done
client curl -s -m 3 http://198.18.0.13:8080/
for n in 11 12 13; do client curl -s -m 3 -w ' %{http_code}\n' http://198.18.0.$n:10256/services/web3; done
echo "=== without the reply rule ==="
ip -n mesh-web3.1 rule del priority 4096
client curl -s -m 3 http://198.18.0.12:8082/
echo "=== kernel ==="
if [ "$DATAPLANE" = ipvs ]; then ip netns exec mesh-n1 iptables-save -t nat | grep -E "MESH-INGRESS.*808[12]"; else ip netns exec mesh-n1 nft list chain ip mesh-host ingress | grep -E "dport 808[12]"; fi
ip netns exec mesh-n1-ingress nft list chain ip mesh svc-web3
ip netns exec mesh-n2-ingress nft list chain ip mesh svc-web3
ip -n mesh-web3.1 rule show priority 4096; ip -n mesh-web3.1 route show table 4096
ip -n mesh-n1 route show 10.255.0.0/16
$MESH lab down
