#!/usr/bin/env bash
# Installs the Debian packages Mesh uses (only those missing). Usage: scripts/install-deps.sh run|test
set -euo pipefail
# gcc and libc6-dev link the ahead-of-time compiled mesh-cni (src/Mesh.Cni) in every Release build.
run_pkgs=(iproute2 iptables nftables curl util-linux procps dnsmasq-base gcc libc6-dev)
test_pkgs=(bind9-dnsutils wrk conntrack ipvsadm busybox-static tcpdump etcd-server dnsperf jq kmod chromium systemd nginx haproxy strace)
want=("${run_pkgs[@]}")
[ "${1:-run}" = test ] && want+=("${test_pkgs[@]}")
# A real container runtime for the podman lab tests (runc: crun fails on these machines; Debian's CNI plugins as
# the podman lab was verified with them: --no-install-recommends would leave them out).
[ "${1:-run}" = test ] && want+=(podman runc containernetworking-plugins)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then echo "mesh: installing packages needs root" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { echo "mesh: the .NET 10 SDK (dotnet) is required" >&2; exit 1; }
