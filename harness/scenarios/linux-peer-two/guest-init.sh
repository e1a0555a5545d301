#!/bin/busybox sh
# /init of the linux-peer guest: load Linux's displif frontend, run the KMS client, power off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
FLIPS=$(sed -n 's/.*kmstest.flips=\([0-9]*\).*/\1/p' /proc/cmdline)
echo "peer: guest up, kernel $(uname -r); loading drm_xen_front"
modprobe drm_xen_front || echo "peer: modprobe drm_xen_front failed"
i=0
while [ ! -e /dev/dri/card0 ] && [ "$i" -lt 300 ]; do
    sleep 0.2
    i=$((i + 1))
done
if [ ! -e /dev/dri/card0 ]; then
    echo "peer: no /dev/dri/card0"
    echo "KMSTEST-FAILED"
    poweroff -f
fi
echo "peer: /dev/dri/card0 present after $((i / 5)) s"
/usr/bin/kmstest --flips "${FLIPS:-120}" --hold-ms 300
echo "peer: kmstest exit status $?"
poweroff -f
