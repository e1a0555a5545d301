# linux-selftest: a Linux PVH guest boots, prints a marker on its PV console and powers off.
log "starting the Linux PVH guest"
run_guest guest.cfg 360 "pvdispl-selftest:"
expect_in_file "$(guest_console selftest)" "PVDISPL-SELFTEST-MARKER-OK" "guest console marker"
grep -F "pvdispl-selftest:" "$(guest_console selftest)" | while read -r line; do log "guest: $line"; done
result SUCCESS "Linux PVH guest printed its marker on hvc0 and powered off$GUEST_RETRIED"
