#!/usr/bin/env bash
# The nft transaction cost of the maglev rule (issue 11 part 5): S services' chains, each one rule
#   tcp dport P dnat ip addr . port to jhash ip saddr mod M seed 0x4d455348 map { 0 : A . 80, ... M-1 : ... }
# loaded with one `nft -f` in a throw-away namespace, against the round-robin rule (numgen over 4 elements).
# Usage (root): load-tests/maglev/nft-cost.sh [SERVICES=100] [M ...=251 1021 4093]; prints seconds per load.
set -euo pipefail
services=${1:-100}; shift || true
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(251 1021 4093)
ns=mesh-maglev-cost-$$
dir=$(mktemp -d)
trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$dir"' EXIT
ip netns add "$ns"

gen() { # gen M → a table of $services chains; M=0: numgen over 4
  local m=$1
  python3 - "$m" "$services" <<'PY'
import sys
m, s = int(sys.argv[1]), int(sys.argv[2])
out = ["table ip lbcost {"]
for i in range(s):
    if m == 0:
        els = ", ".join(f"{b} : 10.255.{i % 250}.{b + 2} . 80" for b in range(4))
        expr = f"numgen inc mod 4 map {{ {els} }}"
    else:
        els = ", ".join(f"{b} : 10.255.{i % 250}.{b % 4 + 2} . 80" for b in range(m))
        expr = f"jhash ip saddr mod {m} seed 0x4d455348 map {{ {els} }}"
    out.append(f"  chain svc{i} {{\n    tcp dport {8000 + i} dnat ip addr . port to {expr}\n  }}")
out.append("}")
print("\n".join(out))
PY
}

load() { # load NAME FILE → seconds
  local start end
  start=$(date +%s.%N)
  ip netns exec "$ns" nft -f "$2"
  end=$(date +%s.%N)
  ip netns exec "$ns" nft delete table ip lbcost
  printf '%s %.2f s\n' "$1" "$(echo "$end - $start" | bc)"
}

gen 0 > "$dir/rr.nft"
for m in "${sizes[@]}"; do gen "$m" > "$dir/m$m.nft"; done
for round in 1 2 3; do
  load "round $round: $services services, numgen (4 elements each)" "$dir/rr.nft"
  for m in "${sizes[@]}"; do load "round $round: $services services, jhash mod $m ($((services * m)) elements)" "$dir/m$m.nft"; done
done
