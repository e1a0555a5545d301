# check_guest NAME FLIPS DOMID: the linux-peer checks for one guest (sourced by scenario.sh).
# Compares the backend's frames.csv of dom<DOMID> with the CRC-32s the guest's KMS client
# printed on its console; checks stats.json. Sets CHECK_SUMMARY; calls `result FAILURE` on
# any mismatch.
check_guest() {
    name=$1 want_flips=$2 domid=$3
    console="$(guest_console "$name")"
    expect_in_file "$console" "KMSTEST-OK" "KMS client in guest $name"
    bars=$(sed -n 's/^kmstest: pattern bars crc32 \([0-9a-f]\{8\}\).*/\1/p' "$console")
    checker=$(sed -n 's/^kmstest: pattern checker crc32 \([0-9a-f]\{8\}\).*/\1/p' "$console")
    [ -n "$bars" ] && [ -n "$checker" ] || result FAILURE "$name did not print its pattern checksums"
    dir="$FRAMES/dom$domid-0/conn0"
    wait_for 20 test -f "$dir/stats.json" || result FAILURE "no stats.json for $name in $dir"
    bad=$(awk -F, -v bars="$bars" -v checker="$checker" -v flips="$want_flips" '
        NR == 1 { next }
        {
            want = ($1 % 2 == 1) ? checker : bars
            kind = ($1 == 0) ? "config" : "flip"
            if ($7 != want || $2 != kind) printf "frame %s (%s) crc %s, expected %s %s; ", $1, $2, $7, kind, want
            n++
        }
        END { if (n != flips + 1) printf "%d frames captured, expected %d; ", n, flips + 1 }' "$dir/frames.csv")
    [ -z "$bad" ] || result FAILURE "$name: captured frames differ from its patterns: $bad"
    stats="$dir/stats.json"
    flips=$(sed -n 's/^  "flips": \([0-9]*\),$/\1/p' "$stats")
    done_sent=$(sed -n 's/^  "frame_done_sent": \([0-9]*\),$/\1/p' "$stats")
    errors=$(tr -d ' \n' < "$stats" | sed -n 's/.*"errors_by_rule":\({[^}]*}\).*/\1/p')
    [ "$flips" = "$want_flips" ] && [ "$done_sent" = "$want_flips" ] \
        || result FAILURE "$name: $flips flips / $done_sent frame-done, expected $want_flips"
    [ "$errors" = "{}" ] || result FAILURE "$name: rule violations $errors"
    CHECK_SUMMARY="$name: $want_flips flips, bars $bars / checker $checker all matched"
    log "$CHECK_SUMMARY"
}
