# make run: the pvdispl unikernel showing one demo scene on real Xen, captured by our backend.
#
# run.env (written by `make run`): DEMO (scene), FRAMES (flips, 0 = until the time limit),
# SIZE (connector WxH), APNG_FRAMES (the first frames kept in run.apng). The backend writes a PNG
# every 60 frames and of the last frame, the APNG (with the real frame timing) and stats.json;
# they are moved to the top of $OUT (out/run/<scene>/).
# shellcheck source=/dev/null
. /payload/run.env
# The backend captures into dom0's RAM (tmpfs), not into $OUT (9p): writing run.apng over 9p
# when the connection ends kept the device busy for ~20 s under TCG and delayed the guest's
# teardown. The files are copied to $OUT once the guest is gone.
FRAMES_DIR=/tmp/capture
log "starting pvdispl-backend"
start_daemon backend pvdispl-backend --out "$FRAMES_DIR" --refresh 60 --snapshot-every 60 \
    --snapshot-at-end --apng --apng-max-frames "${APNG_FRAMES:-120}"
wait_for 10 grep -q "serving /local/domain/0/backend/vdispl" "$OUT/backend.log" \
    || result ERROR "pvdispl-backend did not start (see backend.log)"

name="pvdispl-$DEMO"
demo_cfg /tmp/run.cfg "$name" "$DEMO" "$SIZE" "$FRAMES"
cp /tmp/run.cfg "$OUT/$name.cfg"
log "$DEMO: $FRAMES flips at $SIZE, 60 fps"
guest_start /tmp/run.cfg
domid=$GUEST_DOMID
dir="$FRAMES_DIR/dom$domid-0/conn0"
limit=$((SCENARIO_TIMEOUT - 60))
deadline=$((EPOCHSECONDS + limit))
# Progress: frames shown so far (frames.csv has a header line), every 5 s.
while xenstore-exists "/local/domain/$domid" 2>/dev/null; do
    if [ "$EPOCHSECONDS" -ge "$deadline" ]; then
        log "$DEMO: time limit ($limit s) reached, xl shutdown"
        xl shutdown "$name" >/dev/null 2>&1
        break
    fi
    n=0
    [ -f "$dir/frames.csv" ] && n=$(($(wc -l <"$dir/frames.csv") - 1))
    log "$DEMO: $n frames shown"
    sleep 5
done
guest_wait "$name" 60
stopped=$?
grep -E "display|Test result|ERROR|unknown demo" "$OUT/console-$name.log" | while read -r line; do log "guest: $line"; done
# The backend writes run.apng, then stats.json, when the connection ends.
wait_for 60 test -f "$dir/stats.json" || log "backend wrote no stats.json (see backend.log)"
cp "$dir"/* "$OUT/" || result ERROR "could not copy the capture from $dir to $OUT"
[ "$stopped" -eq 0 ] || result FAILURE "guest $name did not stop"
[ -z "$GUEST_CRASH" ] || result FAILURE "guest $name crashed: $GUEST_CRASH"
fail_if_missing "$OUT/stats.json" "backend stats.json"
shown=$(($(wc -l <"$OUT/frames.csv") - 1))
errors=$(tr -d ' \n' <"$OUT/stats.json" | sed -n 's/.*"errors_by_rule":\({[^}]*}\).*/\1/p')
[ "$errors" = "{}" ] || result FAILURE "backend saw rule violations: $errors"
[ "$shown" -gt 0 ] || result FAILURE "no frame was shown"
result SUCCESS "$DEMO: $shown frames shown at $SIZE; PNG snapshots, run.apng, stats.json and frames.csv in \$OUT"
