#!/bin/busybox sh
# /init of the linux-selftest guest: print a marker on hvc0 (the PV console) and power off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# e9 TEXT: one line on Xen's debug port 0xE9, shown on the serial line as "(dN) TEXT".
# /dev/port's offset is the port number and advances per byte, so write byte by byte.
e9() {
    s="$1"
    i=0
    while [ "$i" -lt "${#s}" ]; do
        printf '%s' "${s:$i:1}" | dd of=/dev/port bs=1 seek=233 count=1 2>/dev/null
        i=$((i + 1))
    done
    printf '\n' | dd of=/dev/port bs=1 seek=233 count=1 2>/dev/null
}
e9 "pvdispl-selftest: userspace up"
echo "pvdispl-selftest: guest up, kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) vcpu"
echo "pvdispl-selftest: hypervisor $(cat /sys/hypervisor/type 2>/dev/null) $(cat /sys/hypervisor/version/major 2>/dev/null).$(cat /sys/hypervisor/version/minor 2>/dev/null)"
echo "PVDISPL-SELFTEST-MARKER-OK"
poweroff -f
