#!/bin/busybox sh
# /init of the initramfs run-in-qemu.sh builds (busybox-static + the modules listed in /boot-modules): mounts the
# host's / read-only over 9p with a tmpfs overlay on top (the guest writes nowhere on the host), mounts the run
# directory read-write at its host path, and hands over to guest-init.sh as PID 1.
# Environment from the kernel command line: MESH_RUN, MESH_GUEST_INIT, MESH_MSIZE.
bb=/bin/busybox
fail() { echo "initramfs: $*" >&2; $bb poweroff -f; }
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
while read -r ko; do $bb insmod "/modules/$ko" || fail "insmod $ko"; done < /boot-modules

$bb mkdir -p /lower /rw /newroot
# cache=loose: the lower layer is read-only for the guest's lifetime, so the guest may cache it freely (dotnet
# reads thousands of files: uncached 9p makes every start several times slower).
$bb mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize="$MESH_MSIZE" hostroot /lower || fail "mount 9p hostroot"
$bb mount -t tmpfs -o mode=0755 rw /rw
$bb mkdir -p /rw/upper /rw/work
$bb mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || fail "mount overlay"
$bb mkdir -p "/newroot$MESH_RUN"
$bb mount -t 9p -o trans=virtio,version=9p2000.L,msize="$MESH_MSIZE" meshrun "/newroot$MESH_RUN" || fail "mount 9p meshrun"

$bb umount /proc /sys
$bb mount -o move /dev /newroot/dev
exec $bb switch_root /newroot /bin/sh "$MESH_GUEST_INIT"
