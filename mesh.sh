#!/usr/bin/env bash
# Runs mesh from this checkout: installs the Debian packages it needs, builds it when the sources changed, runs it.
#   ./mesh.sh lab up      a 3-node routing-mesh lab in network namespaces
#   ./mesh.sh lab status  ./mesh.sh lab down   ./mesh.sh --help
#   ./mesh.sh install [--prefix DIR]   a `mesh` command in DIR (default /usr/local/bin) that runs this checkout's mesh
set -euo pipefail
# The checkout, not the caller's directory: arguments such as `ca init --dir ./ca` stay relative to where mesh was run.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
marker="# mesh: installed by mesh.sh install"

install_wrapper() {
  local prefix=/usr/local/bin
  while [ $# -gt 0 ]; do
    case "$1" in
      --prefix) [ $# -ge 2 ] || { echo "mesh.sh install: --prefix needs a directory" >&2; exit 2; }; prefix=$2; shift 2 ;;
      --prefix=*) prefix=${1#--prefix=}; shift ;;
      -h|--help) echo "usage: ./mesh.sh install [--prefix DIR]   (default /usr/local/bin)"; exit 0 ;;
      *) echo "mesh.sh install: unknown argument '$1' (usage: ./mesh.sh install [--prefix DIR])" >&2; exit 2 ;;
    esac
  done
  [ -d "$prefix" ] || { echo "mesh.sh install: $prefix is not a directory (create it first, or pick another with --prefix DIR)" >&2; exit 1; }
  [ -w "$prefix" ] || { echo "mesh.sh install: cannot write to $prefix (run as root, or pick another with --prefix DIR)" >&2; exit 1; }
  local target=$prefix/mesh
  if [ -e "$target" ] || [ -L "$target" ]; then
    if [ -L "$target" ] || ! [ -f "$target" ] || [ "$(sed -n 2p "$target")" != "$marker" ]; then
      echo "mesh.sh install: $target already exists and is not a mesh wrapper; left as it is (remove it, or pick another --prefix)" >&2
      exit 1
    fi
  fi
  local tmp
  tmp=$(mktemp "$prefix/.mesh.XXXXXX")
  {
    echo '#!/usr/bin/env bash'
    echo "$marker"
    printf 'checkout=%q\n' "$here"
    # shellcheck disable=SC2016 # written as is: expanded when the wrapper runs
    echo '[ -x "$checkout/mesh.sh" ] || { echo "mesh: the checkout $checkout is gone; run ./mesh.sh install from where it is now" >&2; exit 1; }'
    # shellcheck disable=SC2016
    echo 'exec "$checkout/mesh.sh" "$@"'
  } >"$tmp"
  chmod 0755 "$tmp" && mv -f "$tmp" "$target" || { rm -f "$tmp"; echo "mesh.sh install: could not write $target" >&2; exit 1; }
  echo "Installed $target: runs $here/mesh.sh (rebuilt when the sources change)."
  case ":$PATH:" in
    *":$prefix:"*) ;;
    *) echo "Note: $prefix is not on PATH; add it (export PATH=\"$prefix:\$PATH\") or call $target directly." >&2 ;;
  esac
}

if [ "${1:-}" = install ]; then
  shift
  install_wrapper "$@"
  exit 0
fi

"$here/scripts/install-deps.sh" run
bin=$here/artifacts/mesh/mesh
if [ ! -x "$bin" ] || [ -n "$(cd "$here" && find src Directory.Build.props Directory.Packages.props -newer "$bin" -type f -print -quit)" ]; then
  echo "Building mesh..." >&2
  # No MSBuild node outliving the build: one would inherit and hold whatever the caller holds (the lab lock under flock).
  dotnet publish "$here/src/Mesh.Ingress" -c Release -o "$here/artifacts/mesh" --nologo -v quiet -nodeReuse:false >&2
  touch "$bin"
fi
exec "$bin" "$@"
