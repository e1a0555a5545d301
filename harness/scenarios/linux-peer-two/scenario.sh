# linux-peer-two: two guests served concurrently (one device thread each).
. ./check.sh
FRAMES="$OUT/frames"
start_daemon backend pvdispl-backend --out "$FRAMES" --refresh 60 --log-frames
wait_for 10 grep -q "serving /local/domain/0/backend/vdispl" "$OUT/backend.log" \
    || result ERROR "pvdispl-backend did not start (see backend.log)"
guest_start peer.cfg
peer_domid=$(xl domid peer)
guest_start bealloc.cfg
bealloc_domid=$(xl domid bealloc)
log "guests: peer = dom$peer_domid, bealloc = dom$bealloc_domid"
guest_wait peer 600 || result FAILURE "guest peer still running after 600 s"
guest_wait bealloc 300 || result FAILURE "guest bealloc still running"
check_guest peer 60 "$peer_domid"
one="$CHECK_SUMMARY"
check_guest bealloc 20 "$bealloc_domid"
result SUCCESS "two guests served at once: $one; $CHECK_SUMMARY"
