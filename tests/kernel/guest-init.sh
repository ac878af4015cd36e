#!/bin/sh
# PID 1 of the test kernel (user-mode-linux: started by the kernel on the host's / over hostfs; qemu: started by
# qemu-initramfs-init.sh on the host's / over 9p with a tmpfs overlay). Mounts proc/sys/dev and private tmpfs on
# /tmp, /run, /dev/shm, /etc/netns; loads the modules; runs the command; powers off.
# Environment from the kernel command line: MESH_RUN (the run directory, written by the host), MESH_BUSYBOX.
bb=$MESH_BUSYBOX
run=$MESH_RUN
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
log() { echo "$*" >> "$run/init.log"; }

$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
# The kernel may have mounted devtmpfs on /dev already (CONFIG_DEVTMPFS_MOUNT, or moved here by the initramfs):
# mounting a tmpfs over it would hide /dev/urandom (.NET's Guid.NewGuid then throws) and turn /dev/null into a
# regular file.
$bb grep -q '^devtmpfs /dev ' /proc/mounts || $bb mount -t devtmpfs devtmpfs /dev || $bb mount -t tmpfs dev /dev
for node in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
  set -- $node
  [ -c "/dev/$1" ] || { $bb rm -f "/dev/$1"; $bb mknod -m 666 "/dev/$1" c "$2" "$3"; }
done
$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts devpts /dev/pts
$bb mount -t tmpfs shm /dev/shm

# A private /tmp, but a checkout, cache or cwd that lives under the host's /tmp stays visible at its path: keep
# the host's /tmp reachable under the new /run first, then bind each of those paths back over the fresh /tmp.
shares=$($bb cat "$run/shares" 2>/dev/null)
$bb mount -t tmpfs run /run
$bb mkdir -p /run/mesh-vm/host-tmp
# busybox itself lives in the cache, which may be under /tmp too: keep a copy where the new /tmp cannot hide it.
$bb cp "$bb" /run/mesh-vm/busybox && bb=/run/mesh-vm/busybox
$bb mount -o rbind /tmp /run/mesh-vm/host-tmp
$bb mount -t tmpfs tmp /tmp
for p in $shares; do
  case $p in
    /tmp/*) $bb mkdir -p "$p" && $bb mount -o rbind "/run/mesh-vm/host-tmp/${p#/tmp/}" "$p" || log "cannot keep $p visible" ;;
  esac
done
$bb mkdir -p /run/netns /run/lock /tmp/home
# `ip netns exec` bind-mounts /etc/netns/NAME/* (the lab writes task resolv.conf files there): keep those in the
# guest, off the host's disk, where a lab running on the host uses the same names.
[ -d /etc/netns ] || $bb mkdir -p /etc/netns
$bb mount -t tmpfs etc-netns /etc/netns
$bb hostname mesh-vm
$bb ip link set lo up 2>/dev/null

# qemu: the kernel's own module tree, so modprobe and the kernel's autoloading (nf_tables expressions, xt
# matches) find anything the list below does not name.
if [ -s "$run/modules-tree" ]; then
  tree=$($bb cat "$run/modules-tree")
  $bb mkdir -p "/lib/modules/$($bb uname -r)" && $bb mount -o bind "$tree" "/lib/modules/$($bb uname -r)"
fi
while read -r ko; do
  if out=$($bb insmod "$ko" 2>&1); then log "ok $ko"; else log "insmod $ko: $out"; fi
done < "$run/modules"

export HOME=/tmp/home TMPDIR=/tmp DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export MESH_KERNEL_VM="${MESH_VM:-uml}"
/bin/bash "$run/cmd.sh" > "$run/out" 2>&1 < /dev/null
echo $? > "$run/rc"
$bb sync
$bb poweroff -f
