#!/usr/bin/env bash
# Runs mesh from this checkout: installs the Debian packages it needs, builds it when the sources changed, runs it.
#   ./mesh.sh lab up      a 3-node routing-mesh lab in network namespaces
#   ./mesh.sh lab status  ./mesh.sh lab down   ./mesh.sh --help
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh run
bin=artifacts/mesh/mesh
if [ ! -x "$bin" ] || [ -n "$(find src Directory.Build.props Directory.Packages.props -newer "$bin" -type f -print -quit)" ]; then
  echo "Building mesh..." >&2
  dotnet publish src/Mesh.Ingress -c Release -o artifacts/mesh --nologo -v quiet >&2
  touch "$bin"
fi
exec "$bin" "$@"
