# demos: every demo scene of the pvdispl unikernel on real Xen, against our dom0 backend.
#
# One backend serves every guest; the scenes run one after another, each as its own PVH guest
# (extra="demo=<scene> fps=60 frames=$FLIPS", one 320x240 connector) that powers off after
# $FLIPS flips. The backend captures every frame's CRC-32 (frames.csv) and PNG snapshots.
#
# Pass criteria, per scene (checked in dom0 by demo-check against expected.txt, the host's
# renders of frames 0..1799 of every scene at 320x240, made by `make demo-expected`):
#  - the guest powered off by itself (reason poweroff) after $FLIPS flips;
#  - every captured frame (SET_CONFIG and each flip) has the checksum of a host render of that
#    scene, the scene frame numbers strictly increase (the guest skips deadlines it misses, so
#    flip k need not be frame k), scene frames 0, 30 and 60 were shown, at least $FLIPS flips;
#  - every PNG snapshot (backend frames 0, 30, 60 and the last) decodes to its row's checksum;
#  - no displif rule violation in stats.json.
# `stats` draws live figures (measured intervals, late frames), so its frames cannot equal a host
# render: for it demo-check --live checks the capture is well formed and every frame differs
# from the one before.
FLIPS=90
SIZE=320x240
# Scene::names(), written by `make demo-expected` from `demo-render --list`.
fail_if_missing /payload/scenes.txt "scene list (make demo-expected)"
SCENES=$(cat /payload/scenes.txt)
FRAMES="$OUT/frames"

fail_if_missing /payload/expected.txt "host checksums (make demo-expected)"
log "starting pvdispl-backend"
start_daemon backend pvdispl-backend --out "$FRAMES" --refresh 60 --snapshot-frames 0,30,60 --snapshot-at-end
wait_for 10 grep -q "serving /local/domain/0/backend/vdispl" "$OUT/backend.log" \
    || result ERROR "pvdispl-backend did not start (see backend.log)"

# json FILE KEY: a top-level scalar of the backend's pretty-printed stats.json.
json() { sed -n "s/^  \"$2\": \([^,]*\),\{0,1\}$/\1/p" "$1" | head -n 1; }

passed=""
failed=""
count=0
for scene in $SCENES; do
    count=$((count + 1))
    name="demo-$scene"
    cfg="/tmp/$name.cfg"
    demo_cfg "$cfg" "$name" "$scene" "$SIZE" "$FLIPS"
    log "scene $scene: $FLIPS flips at $SIZE"
    guest_start "$cfg"
    domid=$GUEST_DOMID
    if ! guest_wait "$name" 180; then
        failed="$failed $scene(timeout)"
        log "scene $scene: guest still running after 180 s"
        continue
    fi
    if [ -n "$GUEST_CRASH" ]; then
        failed="$failed $scene(crash)"
        continue
    fi
    console="$OUT/console-$name.log"
    grep -E "display|Test result|ERROR|unknown demo" "$console" | while read -r line; do log "$scene guest: $line"; done
    if ! grep -q "reason code 0 " "/var/log/xen/xl-$name.log" 2>/dev/null; then
        failed="$failed $scene(no-poweroff)"
        log "scene $scene: guest did not power off: $(grep 'reason code' "/var/log/xen/xl-$name.log" | head -n 1)"
        continue
    fi
    dir="$FRAMES/dom$domid-0/conn0"
    if ! wait_for 20 test -f "$dir/stats.json"; then
        failed="$failed $scene(no-stats)"
        log "scene $scene: backend wrote no $dir/stats.json"
        continue
    fi
    errors=$(tr -d ' \n' <"$dir/stats.json" | sed -n 's/.*"errors_by_rule":\({[^}]*}\).*/\1/p')
    log "scene $scene backend: flips $(json "$dir/stats.json" flips), frame-done $(json "$dir/stats.json" frame_done_sent), late $(json "$dir/stats.json" late_events), errors $errors, cpu/flip $(json "$dir/stats.json" cpu_ns_per_flip) ns"
    if [ "$scene" = stats ]; then
        mode="--live"
    else
        mode="--table /payload/expected.txt --require 0,30,60"
    fi
    # shellcheck disable=SC2086 # $mode is a word list
    demo-check $mode --scene "$scene" --size "$SIZE" --dir "$dir" --min-flips "$FLIPS" >"$OUT/check-$scene.txt" 2>&1
    status=$?
    while read -r line; do log "$line"; done <"$OUT/check-$scene.txt"
    if [ "$status" -ne 0 ] || [ "$errors" != "{}" ]; then
        failed="$failed $scene"
    else
        passed="$passed $scene"
        milestone "scene_ok" "$scene"
    fi
done
log "passed:${passed:- none}; failed:${failed:- none}"
[ -z "$failed" ] || result FAILURE "scenes failed:$failed (passed:${passed:- none}); see check-<scene>.txt"
result SUCCESS "all $count scenes ran on real Xen; every captured frame of the deterministic scenes equals a host render (stats: live figures, well formed); passed:$passed"
