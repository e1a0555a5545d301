# linux-peer-bealloc: backend-allocated buffers (be-alloc=1) with Linux drm_xen_front.
#
# Pass criteria:
#  - the guest's KMS client shows frame 0 (colour bars, via SET_CONFIG) and flips
#    FLIPS times between two buffers, each flip completed by our frame-done event;
#  - the backend's frames.csv has frame 0 = the bars CRC-32 and every frame n >= 1
#    alternating checker/bars, exactly as the guest computed them from its own code;
#  - stats.json: FLIPS flips, FLIPS frame-done events, no rule violations;
#  - PNG snapshots of frames 0 and 1 and of the last frame shown were written (and an APNG).
FLIPS=20  # must match kmstest.flips= in guest.cfg
FRAMES="$OUT/frames"
log "starting pvdispl-backend"
start_daemon backend pvdispl-backend --out "$FRAMES" --refresh 60 --snapshot-frames 0,1 --snapshot-at-end --log-frames --apng --apng-max-frames 30
wait_for 10 grep -q "serving /local/domain/0/backend/vdispl" "$OUT/backend.log" \
    || result ERROR "pvdispl-backend did not start (see backend.log)"
run_guest guest.cfg 700 "peer: guest up"
console="$(guest_console bealloc)"
grep -E "^(peer|kmstest):" "$console" | while read -r line; do log "guest: $line"; done
expect_in_file "$console" "KMSTEST-OK" "KMS client in the guest"
milestone kmstest_done

bars=$(sed -n 's/^kmstest: pattern bars crc32 \([0-9a-f]\{8\}\).*/\1/p' "$console")
checker=$(sed -n 's/^kmstest: pattern checker crc32 \([0-9a-f]\{8\}\).*/\1/p' "$console")
[ -n "$bars" ] && [ -n "$checker" ] || result FAILURE "guest did not print its pattern checksums"
log "guest computed: bars $bars, checker $checker"

# The device thread writes stats.json when the guest's connection ends.
# (This guest's directory: a first boot that died early may have left another domid.)
dir="$FRAMES/dom$GUEST_DOMID-0/conn0"
wait_for 20 test -f "$dir/stats.json" || result FAILURE "backend wrote no $dir/stats.json (see backend.log)"
csv="$dir/frames.csv"
fail_if_missing "$csv" "backend frames.csv"
log "backend frames: $(($(wc -l < "$csv") - 1)) in $csv"

# Frame 0 (SET_CONFIG) must be the bars; frame n >= 1 (PG_FLIP) checker if n odd, bars if even.
bad=$(awk -F, -v bars="$bars" -v checker="$checker" -v flips="$FLIPS" '
    NR == 1 { next }
    {
        want = ($1 % 2 == 1) ? checker : bars
        kind = ($1 == 0) ? "config" : "flip"
        if ($7 != want || $2 != kind) { printf "frame %s (%s) crc %s, expected %s %s; ", $1, $2, $7, kind, want; nbad++ }
        n++
    }
    END { if (n != flips + 1) printf "%d frames captured, expected %d; ", n, flips + 1 }' "$csv")
[ -z "$bad" ] || result FAILURE "captured frames differ from the guest's patterns: $bad"

stats="$dir/stats.json"
json() { sed -n "s/^  \"$1\": \([^,]*\),\{0,1\}$/\1/p" "$stats" | head -n 1; }
flips=$(json flips); done_sent=$(json frame_done_sent); errors=$(tr -d ' \n' < "$stats" | sed -n 's/.*"errors_by_rule":\({[^}]*}\).*/\1/p')
cpu=$(json cpu_ns_per_flip); flip_cpu=$(json capture_cpu_ns); late=$(json late_events); missed=$(json missed_vblanks); stalls=$(json event_page_stalls)
p50=$(tr -d ' \n' < "$stats" | sed -n 's/.*"flip_interval":{[^}]*"p50_ns":\([0-9]*\).*/\1/p')
log "backend stats: flips $flips, frame-done $done_sent, errors $errors, cpu/flip ${cpu} ns (${flip_cpu} ns per PG_FLIP without snapshot), late $late, missed vblanks $missed, stalls $stalls, flip interval p50 ${p50} ns"
milestone backend_stats "cpu_ns_per_flip=$cpu capture_cpu_ns=$flip_cpu flips=$flips p50_ns=$p50"
[ "$flips" = "$FLIPS" ] || result FAILURE "backend counted $flips flips, expected $FLIPS"
[ "$done_sent" = "$FLIPS" ] || result FAILURE "backend sent $done_sent frame-done events, expected $FLIPS"
[ "$errors" = "{}" ] || result FAILURE "backend saw rule violations: $errors"
be_allocated=$(json dbufs_backend_allocated)
log "backend-allocated buffers: $be_allocated"
[ "${be_allocated:-0}" -ge 2 ] || result FAILURE "only ${be_allocated:-0} backend-allocated buffers (expected both of kmstest's)"
fail_if_missing "$dir/frame-000000.png" "snapshot of frame 0"
fail_if_missing "$dir/frame-000001.png" "snapshot of frame 1"
fail_if_missing "$dir/final.png" "snapshot of the last frame shown"
fail_if_missing "$dir/run.apng" "APNG of the run"
result SUCCESS "drm_xen_front showed bars ($bars) then $FLIPS flips; every captured checksum matches the guest's own; dom0 CPU per flip ${cpu} ns (every frame PNG-encoded for the APNG) at 640x480 with backend-allocated buffers$GUEST_RETRIED"
