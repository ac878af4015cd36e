#!/usr/bin/env bash
# Runs INSIDE the test kernel (user-mode-linux or qemu; one boot, started by run-ipvs-tests.sh): the Mesh.Ipvs kernel tests, then the whole
# lab with the ipvs dataplane. Each prints its own summary line; exit status non-zero if either failed.
#
#   guest-ci.sh KERNEL_TESTS_BINARY MESH_EXECUTABLE
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$1" test
kernel=$?
bash "$here/ipvs-lab-test.sh" "$2"
lab=$?
[[ $kernel -eq 0 && $lab -eq 0 ]]
