#!/usr/bin/env bash
# Tests run-in-vm.sh's choice of kernel on the host (no guest command runs): MESH_KERNEL_VM forces one; an invalid
# value is refused; with a user-mode-linux that dies as it does on Intel hosts with AMX (a stand-in kernel that
# prints that panic and exits 134, also with the reason far above a long stack trace, or with no word at all), auto
# picks qemu and says why; with one that boots, auto picks uml.
# Prints "vm-choice: N passed, M failed".
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
passed=0 failed=0
check() { local name=$1; shift; if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi; }
which() { MESH_KERNEL_VM=$1 bash "$here/run-in-vm.sh" --which 2>/dev/null; }

fake=$(mktemp) long=$(mktemp) mute=$(mktemp)
trap 'rm -f "$fake" "$long" "$mute"' EXIT
printf '#!/bin/sh\necho "userspace - ptrace set fp regs failed, errno = 14" >&2\necho "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b" >&2\nexit 134\n' > "$fake"
# As the real one did on 2026-12-01: a harmless "failed" first, the reason, then a stack trace longer than the
# console tail the runner prints (the probe then found no reason and ended run-ipvs-tests.sh without a word).
printf '#!/bin/sh\nexec >&2\necho "mmapper_init - find_iomem failed"\necho "userspace - ptrace set fp regs failed, errno = 14"\nfor i in $(seq 40); do echo " [<6002e653>] fatal_sigsegv+0x39/0x45"; done\nexit 134\n' > "$long"
printf '#!/bin/sh\nexit 134\n' > "$mute"
chmod +x "$fake" "$long" "$mute"

check "MESH_KERNEL_VM=qemu is obeyed without a probe" test "$(which qemu)" = $'qemu\tforced by MESH_KERNEL_VM=qemu'
check "MESH_KERNEL_VM=uml is obeyed without a probe" test "$(which uml)" = $'uml\tforced by MESH_KERNEL_VM=uml'
check "MESH_KERNEL_VM=kvm is refused" bash -c "! MESH_KERNEL_VM=kvm bash '$here/run-in-vm.sh' --which 2>/dev/null"
got=$(MESH_UML_KERNEL=$fake which auto)
check "a user-mode-linux that panics → qemu, with the reason ($got)" \
  test "$got" = $'qemu\tuser-mode-linux did not boot here (userspace - ptrace set fp regs failed, errno = 14)'
got=$(MESH_UML_KERNEL=$long which auto)
check "a user-mode-linux whose reason scrolled out of the console tail → qemu, with the reason ($got)" \
  test "$got" = $'qemu\tuser-mode-linux did not boot here (userspace - ptrace set fp regs failed, errno = 14)'
got=$(MESH_UML_KERNEL=$mute which auto)
check "a user-mode-linux that dies without a word → qemu ($got)" test "$got" = $'qemu\tuser-mode-linux did not boot here (no exit status)'
if [[ ${MESH_KERNEL_VM:-auto} == auto ]]; then
  got=$(which auto)
  case $got in
    uml*) check "the real user-mode-linux boots here → uml ($got)" true ;;
    *) echo "note: user-mode-linux does not boot on this CPU ($got); the positive probe is not checked here" ;;
  esac
fi
echo "vm-choice: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
