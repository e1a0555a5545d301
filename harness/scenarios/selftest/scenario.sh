# selftest: the pvdispl unikernel's Xen core on real Xen.
#
# 1. `xl create` the kernel with extra="selftest": every in-guest check must
#    print `[ok]` and the run must end with `Test result: SUCCESS` and power off.
#    The 100 ms deadline-wait figures are logged.
# 2. A second instance with no work idles; `xl shutdown` must make it power off
#    cleanly (domain gone, xl reports shutdown reason code 0 = poweroff).
# 3. A third instance with extra="crash=fault" must print its page fault and
#    end with shutdown reason crash (3).

# wait_verdict FILE SECONDS: wait for the guest's verdict line using shell
# builtins only (one `sleep` per second): `wait_for` forks three processes
# every 0.2 s, and fork/exec in a PV dom0 under TCG is heavy enough to delay
# the guest's timer wake-ups that the test measures.
wait_verdict() {
    _i=0
    while [ "$_i" -lt "$2" ]; do
        if [ -f "$1" ]; then
            while IFS= read -r _line; do
                case "$_line" in *"] Test result: "*) return 0 ;; esac
            done <"$1"
        fi
        sleep 1
        _i=$((_i + 1))
    done
    return 1
}

log "selftest guest"
# The guest gets pCPU 1 to itself (cpus = "1" in its cfg) and dom0 moves to
# pCPU 0 while it runs: the 100 ms timer check measures Xen's wake-up, not
# dom0's fork/exec load competing for the same CPU under TCG.
xl vcpu-pin Domain-0 all 0 || log "warning: could not pin dom0 to pCPU 0"
guest_start selftest.cfg
con="$(guest_console pvdispl-selftest)"
if ! wait_verdict "$con" 60; then
    guest_wait pvdispl-selftest 1
    result FAILURE "selftest guest printed no verdict within 60 s"
fi
guest_wait pvdispl-selftest 30 || result FAILURE "selftest guest still running 30 s after its verdict"
grep -F "] " "$con" | while read -r line; do log "guest: $line"; done
for check in \
    "domid and name...	[ok]" \
    "xenstore write/read/directory/rm...	[ok]" \
    "xenstore transaction...	[ok]" \
    "xenstore watch...	[ok]" \
    "grant access and end...	[ok]" \
    "event channel loopback...	[ok]" \
    "event channel 100 ms deadline wait...	[ok]" \
    "] Test result: SUCCESS"; do
    expect_in_file "$con" "$check" "selftest check"
done
if grep -F "[FAIL]" "$con" >/dev/null; then
    result FAILURE "a selftest check failed: $(grep -F '[FAIL]' "$con" | head -n 1)"
fi
xl_log=/var/log/xen/xl-pvdispl-selftest.log
if [ -f "$xl_log" ] && ! grep -q "reason code 0 " "$xl_log"; then
    result FAILURE "selftest guest did not power off: $(grep 'reason code' "$xl_log" | head -n 1)"
fi
milestone selftest_done
xl vcpu-pin Domain-0 all all || log "warning: could not unpin dom0"

log "idle guest: start, then xl shutdown"
guest_start idle.cfg
idle_con="$(guest_console pvdispl-idle)"
if ! wait_for 30 grep -qF "idle: waiting for control/shutdown" "$idle_con"; then
    save_console pvdispl-idle
    result FAILURE "idle guest never reached its idle loop"
fi
milestone idle_ready
xl shutdown pvdispl-idle || result FAILURE "xl shutdown pvdispl-idle failed"
if ! guest_wait pvdispl-idle 30; then
    result FAILURE "idle guest still running 30 s after xl shutdown"
fi
milestone idle_gone
expect_in_file "$idle_con" "control/shutdown: poweroff requested, powering off" "idle guest saw the request"
idle_xl_log=/var/log/xen/xl-pvdispl-idle.log
fail_if_missing "$idle_xl_log" "xl's log of the idle guest"
cat "$idle_xl_log" | while read -r line; do log "xl: $line"; done
if ! grep -q "reason code 0 " "$idle_xl_log"; then
    result FAILURE "idle guest did not shut down with reason poweroff: $(grep 'reason code' "$idle_xl_log" | head -n 1)"
fi

log "crash guest: a deliberate page fault must be reported and end as a crash"
run_guest crash.cfg 30
crash_con="$(guest_console pvdispl-crash)"
expect_in_file "$crash_con" "ERROR: CPU exception 14 (#PF page fault)" "crash guest reported its page fault"
crash_xl_log=/var/log/xen/xl-pvdispl-crash.log
fail_if_missing "$crash_xl_log" "xl's log of the crash guest"
if ! grep -q "reason code 3 " "$crash_xl_log"; then
    result FAILURE "crash guest did not shut down as crashed: $(grep 'reason code' "$crash_xl_log" | head -n 1)"
fi
result SUCCESS "selftest passed on real Xen; xl shutdown powered the idle guest off; a faulting guest reported and crashed"
