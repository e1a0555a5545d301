#!/bin/busybox sh
# /init of the linux-selftest guest: print a marker on hvc0 (the PV console) and power off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
echo "pvdispl-selftest: guest up, kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) vcpu"
echo "pvdispl-selftest: hypervisor $(cat /sys/hypervisor/type 2>/dev/null) $(cat /sys/hypervisor/version/major 2>/dev/null).$(cat /sys/hypervisor/version/minor 2>/dev/null)"
echo "PVDISPL-SELFTEST-MARKER-OK"
poweroff -f
