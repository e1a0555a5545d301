# flip: the pvdispl unikernel's displif frontend on real Xen, against pvdispl-backend.
#
# Phase 1 (flip.cfg, extra="frames=600"): connectors c0 320x240 and c1 640x360.
# Pass criteria, per connector (backend capture $OUT/capture/dom<D>-0/conn<N>/):
#  - the guest powered off by itself (reason poweroff) after 600 flips on every connector;
#  - stats.json: exactly $FLIPS flips and frame-done events, no displif rule violation,
#    flip interval mean/p50/p99/max and whether the mean is within 16.667 ms +- 1 % are
#    logged (milestone pacing_60hz) and quoted in the verdict with the deadlines the guest
#    skipped, not asserted: the project measures speed targets from logged figures, never
#    by timed pass/fail checks (shared, noisy machines: under nested TCG a guest -> dom0 ->
#    guest round trip is ~4 ms but spikes past 25 ms several times in 10 s, and each such
#    spike skips a deadline, +0.17 % on the mean);
#  - every captured frame (SET_CONFIG and each flip) has the CRC-32 of a host render of the
#    test pattern at that resolution (expected.txt, `make flip-expect`, frames 0..900): the
#    frame number is looked up by checksum, must start at 0 (SET_CONFIG) and strictly
#    increase (a skipped deadline makes flip k show frame k + s).
# Phase 2 (restart.cfg, extra="frames=0"): once the guest flips, the backend is stopped
# (SIGTERM) and a new one started; the guest must reconnect (its console says session 2
# is flipping), the new backend must count flips, and `xl shutdown` must power it off.
# That guest runs at 60 Hz with triple buffering (buffers=3); its intervals at the second
# backend are reported, not judged.
# Neither guest is pinned to a pCPU: pinned (cpus = "1"), the flip guest often could not
# run when its deadline came because a dom0 vCPU held pCPU 1 while pCPU 0 idled; most of its
# skipped deadlines were then 'with a frame ready' (9-21 ms late wake-ups). Unpinned, 1-3.
FLIPS=600
REFRESH=off
CAP="$OUT/capture"
CAP2="$OUT/capture2"
fail_if_missing /payload/expected.txt "host checksums (make flip-expect)"

# json FILE KEY: a top-level scalar of the backend's pretty-printed stats.json.
json() { sed -n "s/^  \"$2\": \([^,]*\),\{0,1\}$/\1/p" "$1" | head -n 1; }
# interval FILE KEY: a field of stats.json's flip_interval object.
interval() { tr -d ' \n' <"$1" | sed -n "s/.*\"flip_interval\":{[^}]*\"$2\":\([0-9]*\).*/\1/p"; }
errors_of() { tr -d ' \n' <"$1" | sed -n 's/.*"errors_by_rule":\({[^}]*}\).*/\1/p'; }
backend_up() { wait_for 10 grep -q "serving /local/domain/0/backend/vdispl" "$1"; }

log "starting pvdispl-backend"
# --refresh off: frame-done as soon as a flip is served (its checksum follows), so the flip
# rate is the guest's own pacing. No snapshots mid-run: encoding one (~80 ms of dom0 CPU
# under TCG) perturbs the pacing being measured; final.png is taken at the end.
start_daemon backend pvdispl-backend --out "$CAP" --refresh "$REFRESH" --snapshot-at-end
backend_up "$OUT/backend.log" || result ERROR "pvdispl-backend did not start (see backend.log)"

# ---- phase 1 ----------------------------------------------------------------------
guest_start flip.cfg
domid=$GUEST_DOMID
guest_wait flip 240 || result FAILURE "guest flip still running after 240 s"
[ -z "$GUEST_CRASH" ] || result FAILURE "guest flip crashed: $GUEST_CRASH"
console="$OUT/console-flip.log"
grep -E "display|PVH entry|fatal|panic" "$console" | while read -r line; do log "guest: $line"; done
grep -q "reason code 0 " /var/log/xen/xl-flip.log 2>/dev/null \
    || result FAILURE "guest flip did not power off: $(grep 'reason code' /var/log/xen/xl-flip.log | head -n 1)"
expect_in_file "$console" "$FLIPS flips done on every connector" "guest stopped after $FLIPS flips"
milestone flip_guest_done
first=$(sed -n 's/.*PVH entry -> first flip done \([0-9.]* ms\).*/\1/p' "$console" | tr '\n' ' ')
log "guest: PVH entry -> first completed flip per connector: $first"
milestone first_flip "$(echo "$first" | tr ' ' '_')"

summary=""
timing=""
for conn in 0 1; do
    dir="$CAP/dom$domid-0/conn$conn"
    wait_for 20 test -f "$dir/stats.json" || result FAILURE "backend wrote no $dir/stats.json"
    s="$dir/stats.json"
    res=$(json "$s" resolution | tr -d '"')
    flips=$(json "$s" flips); done_sent=$(json "$s" frame_done_sent); errors=$(errors_of "$s")
    mean=$(interval "$s" mean_ns); p50=$(interval "$s" p50_ns); p99=$(interval "$s" p99_ns); max=$(interval "$s" max_ns)
    late=$(json "$s" late_events); missed=$(json "$s" missed_vblanks); cpu=$(json "$s" cpu_ns_per_flip)
    log "conn$conn $res: flips $flips, frame-done $done_sent, errors $errors, interval mean $mean p50 $p50 p99 $p99 max $max ns, late $late, missed vblanks $missed, cpu/flip $cpu ns"
    milestone "conn${conn}_stats" "res=$res flips=$flips mean_ns=$mean p50_ns=$p50 p99_ns=$p99 max_ns=$max errors=$errors"
    # frames=N: each connector stops after exactly N completed flips.
    [ "$flips" = "$FLIPS" ] || result FAILURE "conn$conn: backend counted $flips flips, expected exactly $FLIPS"
    [ "$done_sent" = "$flips" ] || result FAILURE "conn$conn: $done_sent frame-done events for $flips flips"
    [ "$errors" = "{}" ] || result FAILURE "conn$conn: displif rule violations: $errors"
    # Pacing is reported (milestone pacing_60hz), not asserted; see the header.
    [ -n "$mean" ] && [ "$mean" -ge 16500000 ] && [ "$mean" -le 16833334 ] \
        || timing="$timing conn$conn mean flip interval $mean ns is not 16.667 ms +- 1 %;"
    # Every captured frame must be a host render; frame numbers from 0, strictly increasing.
    check=$(awk -F'[ ,]' -v mode="$res" '
        FNR == NR { if ($1 == mode) frame[$3] = $2; next }
        FNR == 1 { next }
        {
            n++
            if (!($7 in frame)) { bad++; if (bad <= 5) printf "frame %s (%s) crc %s is no host render; ", $1, $2, $7; next }
            f = frame[$7] + 0
            if (n == 1 && f != 0) printf "first frame shown is pattern frame %d, not 0; ", f
            if (n > 1 && f <= last) printf "pattern frame %d after %d; ", f, last
            if (f - last > 1) skipped += f - last - 1
            last = f; ok++
        }
        END { printf "|%d|%d|%d|%d", n, ok, skipped, last }' /payload/expected.txt "$dir/frames.csv")
    problems=${check%%|*}; rest=${check#*|}
    n=${rest%%|*}; rest=${rest#*|}; ok=${rest%%|*}; rest=${rest#*|}; skipped=${rest%%|*}; last=${rest#*|}
    log "conn$conn $res: $ok of $n captured frames equal host renders (pattern frames 0..$last, $skipped skipped)"
    [ -z "$problems" ] || result FAILURE "conn$conn: $problems"
    [ "$n" -ge $((FLIPS + 1)) ] || result FAILURE "conn$conn: $n frames captured, expected at least $((FLIPS + 1))"
    gskip=$(sed -n "s/.*display connector $conn (.*skipped deadlines \([0-9]* ([0-9]* with a frame ready)\),.*/\1/p" "$console")
    summary="$summary conn$conn $res: $flips flips, mean $mean ns (p50 $p50, p99 $p99, max $max), guest skipped ${gskip:-?} deadlines, $ok/$n CRC = host;"
done
milestone phase1_ok

# ---- phase 2: backend restart -----------------------------------------------------
guest_start restart.cfg
rdomid=$GUEST_DOMID
rcon="$(guest_console flip-restart)"
wait_for 60 grep -q "display: session 1 flipping" "$rcon" || { save_console flip-restart; result FAILURE "restart guest never flipped"; }
milestone restart_guest_flipping
sleep 2
old=$(cat /run/harness/daemon.backend.pid)
log "stopping pvdispl-backend (pid $old) under the flipping guest"
kill -TERM "$old"
wait_for 20 sh -c "! kill -0 $old 2>/dev/null" || result FAILURE "backend did not exit on SIGTERM"
milestone backend_stopped
start_daemon backend2 pvdispl-backend --out "$CAP2" --refresh "$REFRESH"
backend_up "$OUT/backend2.log" || result ERROR "second pvdispl-backend did not start (see backend2.log)"
if ! wait_for 60 grep -q "display: session 2 flipping" "$rcon"; then
    save_console flip-restart
    grep -E "display|warn|error" "$rcon" | tail -n 20 | while read -r line; do log "restart guest: $line"; done
    result FAILURE "guest did not reconnect and flip after the backend restart"
fi
milestone guest_reconnected
sleep 2
xl shutdown flip-restart || result FAILURE "xl shutdown flip-restart failed"
guest_wait flip-restart 60 || result FAILURE "restart guest still running 60 s after xl shutdown"
grep -E "display|control/shutdown" "$OUT/console-flip-restart.log" | while read -r line; do log "restart guest: $line"; done
grep -q "reason code 0 " /var/log/xen/xl-flip-restart.log 2>/dev/null \
    || result FAILURE "restart guest did not power off: $(grep 'reason code' /var/log/xen/xl-flip-restart.log | head -n 1)"
s1="$CAP/dom$rdomid-0/conn0/stats.json"
s2="$CAP2/dom$rdomid-0/conn0/stats.json"
wait_for 20 test -f "$s2" || result FAILURE "second backend wrote no $s2"
f1=$(json "$s1" flips 2>/dev/null); f2=$(json "$s2" flips); e1=$(errors_of "$s1" 2>/dev/null); e2=$(errors_of "$s2")
log "restart: first backend flips ${f1:-?} (errors ${e1:-?}), second backend flips $f2 (errors $e2), ended by $(json "$s2" ended_by)"
m2=$(interval "$s2" mean_ns); p50b=$(interval "$s2" p50_ns); p99b=$(interval "$s2" p99_ns); maxb=$(interval "$s2" max_ns)
log "restart guest at 60 Hz, triple buffering, second backend: interval mean $m2 p50 $p50b p99 $p99b max $maxb ns (reported, not judged)"
milestone restart_stats "flips_before=${f1:-?} flips_after=$f2 mean_ns=$m2"
[ -n "$f2" ] && [ "$f2" -gt 0 ] || result FAILURE "second backend counted no flips"
[ "$e2" = "{}" ] || result FAILURE "second backend saw rule violations: $e2"
if [ -n "$timing" ]; then
    pacing="60 Hz target NOT met:$timing"
else
    pacing="60 Hz target met (mean within 16.667 ms +- 1 %)"
fi
log "pacing: $pacing"
milestone pacing_60hz "$pacing"
result SUCCESS "$summary restart: ${f1:-?} flips before, $f2 after reconnect (buffers=3, mean $m2 ns), clean poweroff; pacing (reported, not judged): $pacing"
