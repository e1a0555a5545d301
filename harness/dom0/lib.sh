# lib.sh: functions for scenario.sh (sourced by busybox ash in dom0; see harness/README.md).
# Contract with the host: `@@harness milestone NAME ...` lines are timestamped, and the verdict
# recorded by `result` is printed by /init as `Test result: STATUS REASON` after log collection.

log() {
    echo "[scenario] $*"
}

milestone() {
    echo "@@harness milestone $*"
}

# result STATUS REASON...: record the verdict (first call wins) and end the scenario.
result() {
    status=$1
    shift
    case "$status" in
        SUCCESS | FAILURE | ERROR) ;;
        *)
            set -- "result called with bad status '$status': $*"
            status=ERROR
            ;;
    esac
    if [ ! -s /run/harness/verdict ]; then
        echo "$status $*" >/run/harness/verdict
    fi
    log "result: $status $*"
    exit 0
}

fail_if_missing() {
    [ -e "$1" ] || result ERROR "missing $1 ($2)"
}

# expect_in_file FILE TEXT WHAT
expect_in_file() {
    if ! grep -qF -- "$2" "$1" 2>/dev/null; then
        result FAILURE "$3: '$2' not in $1"
    fi
}

# wait_for SECONDS CMD [ARGS...]: 0 once CMD succeeds, 1 after SECONDS (wall clock).
# Re-runs CMD every 0.5 s; the clock is ash's $EPOCHSECONDS (no fork): fork/exec in a PV dom0
# under TCG is expensive and competes with the guests for the CPU.
wait_for() {
    _deadline=$((EPOCHSECONDS + $1))
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$EPOCHSECONDS" -ge "$_deadline" ] && return 1
        sleep 0.5
    done
    return 0
}

_xs_is() {
    [ "$(xenstore-read "$1" 2>/dev/null)" = "$2" ]
}

# xs_wait SECONDS PATH VALUE
xs_wait() {
    wait_for "$1" _xs_is "$2" "$3"
}

# start_daemon NAME CMD [ARGS...]
start_daemon() {
    _name=$1
    shift
    "$@" >"/out/$_name.log" 2>&1 </dev/null &
    echo $! >"/run/harness/daemon.$_name.pid"
    milestone daemon_started "$_name" "pid=$!"
}

# The value of `name = "..."` in an xl config.
_cfg_name() {
    sed -n 's/^[[:space:]]*name[[:space:]]*=[[:space:]]*["'\'']\([^"'\'']*\)["'\''].*/\1/p' "$1" | head -n 1
}

guest_console() {
    echo "/var/log/xen/console/guest-$1.log"
}

save_console() {
    cp "$(guest_console "$1")" "/out/console-$1.log" 2>/dev/null || true
}

# demo_cfg FILE NAME SCENE SIZE FRAMES: write an xl config for the pvdispl unikernel
# (/payload/pvdispl) showing demo SCENE on one WxH connector for FRAMES flips at 60 fps.
demo_cfg() {
    {
        echo "name = \"$2\""
        echo 'type = "pvh"'
        echo 'kernel = "/payload/pvdispl"'
        echo 'memory = 64'
        echo 'vcpus = 1'
        echo "vdispl = [ 'backend=0,be-alloc=0,connectors=c0:$4' ]"
        echo "extra = \"demo=$3 fps=60 frames=$5\""
        echo 'on_poweroff = "destroy"'
        echo 'on_crash = "destroy"'
    } >"$1"
}

# guest_start CFG: sets GUEST (its name) and GUEST_DOMID.
guest_start() {
    fail_if_missing "$1" "xl config"
    GUEST=$(_cfg_name "$1")
    [ -n "$GUEST" ] || result ERROR "$1 has no name = \"...\" line"
    # xl appends to its per-domain log: start a fresh one so guest_wait reads this run's.
    if [ -f "/var/log/xen/xl-$GUEST.log" ]; then
        cat "/var/log/xen/xl-$GUEST.log" >>"/var/log/xen/xl-$GUEST.log.old"
        rm -f "/var/log/xen/xl-$GUEST.log"
    fi
    if ! xl create "$1" >"/out/xl-create-$GUEST.log" 2>&1; then
        cat "/out/xl-create-$GUEST.log"
        result ERROR "xl create $1 failed (see xl-create-$GUEST.log)"
    fi
    # One `xl domid` per guest (xl is a heavy process under TCG); guest_wait reuses it.
    GUEST_DOMID=$(xl domid "$GUEST" 2>/dev/null)
    if [ -z "$GUEST_DOMID" ]; then
        # Already gone (a guest that dies at once): xl's log of the domain names its domid.
        GUEST_DOMID=$(sed -n 's/^Waiting for domain .* (domid \([0-9]*\)) to die.*/\1/p' \
            "/var/log/xen/xl-$GUEST.log" 2>/dev/null | head -n 1)
    fi
    milestone guest_created "$GUEST" "domid=$GUEST_DOMID"
}

# guest_wait NAME SECONDS: 0 when the domain is gone, 1 on timeout (then it is destroyed).
# While the guest runs, this forks nothing: once a second it reads xl's log of the domain
# (builtins only) for the line xl writes when the domain has died; a xenstore check (a fork)
# runs every 10 s as a fallback. Each fork/exec in a PV dom0 under TCG costs tens of ms of
# CPU and showed up as late frames in the flip scenario. Then polls xenstore until gone.
guest_wait() {
    if [ "$1" = "$GUEST" ] && [ -n "$GUEST_DOMID" ]; then
        _domid=$GUEST_DOMID
    else
        _domid=$(xl domid "$1" 2>/dev/null)
    fi
    _deadline=$((EPOCHSECONDS + $2))
    _n=0
    while [ -n "$_domid" ] && [ "$EPOCHSECONDS" -lt "$_deadline" ]; do
        file_has "/var/log/xen/xl-$1.log" "has shut down" && break
        if [ $((_n % 10)) -eq 9 ] && ! xenstore-exists "/local/domain/$_domid" 2>/dev/null; then
            break
        fi
        quiet_sleep 1
        _n=$((_n + 1))
    done
    while [ -n "$_domid" ] && xenstore-exists "/local/domain/$_domid" 2>/dev/null; do
        [ "$EPOCHSECONDS" -ge "$_deadline" ] && break
        sleep 0.5
    done
    if _guest_gone "$1"; then
        milestone guest_gone "$1"
        save_console "$1"
        GUEST_CRASH=$(guest_crash_line "$_domid")
        [ -n "$GUEST_CRASH" ] && log "guest $1 crashed: $GUEST_CRASH"
        return 0
    fi
    log "guest $1 still running after $2 s: destroying it"
    save_console "$1"
    xl destroy "$1" >/dev/null 2>&1
    return 1
}

# quiet_sleep SECONDS: sleep without forking (a read with a timeout on a FIFO nobody writes).
quiet_sleep() {
    read -r -t "$1" _ <>/run/harness/quiet.fifo || true
}

# file_has FILE TEXT: FILE exists and a line contains TEXT (builtins only, no fork).
file_has() {
    [ -f "$1" ] || return 1
    while IFS= read -r _line; do
        case "$_line" in *"$2"*) return 0 ;; esac
    done <"$1"
    return 1
}

_guest_gone() {
    ! xl domid "$1" >/dev/null 2>&1
}

# guest_crash_line DOMID: Xen's last crash message about that domain (empty if none).
guest_crash_line() {
    [ -n "$1" ] || return 0
    xl dmesg 2>/dev/null | grep -E "(d$1v[0-9]+ .*(Triple fault|crash))|(Domain $1 .*crashed)|(domain_crash.*d$1)" | tail -n 1
}

# run_guest CFG SECONDS [EARLY_MARKER]
run_guest() {
    GUEST_RETRIED=""
    guest_start "$1"
    guest_wait "$GUEST" "$2" || result FAILURE "guest $GUEST still running after $2 s"
    # Linux PVH guests triple-fault now and then in early boot under nested TCG (about 1 boot
    # in 6-10; the same guest boots fine otherwise). If EARLY_MARKER (a line the guest's own
    # init prints first) never appeared, the crash came before anything under test ran: start
    # the guest once more, and say so (milestone guest_retry, GUEST_RETRIED for the verdict).
    if [ -n "$GUEST_CRASH" ] && [ -n "$3" ] && ! file_has "$(guest_console "$GUEST")" "$3"; then
        log "guest $GUEST crashed before its init ran ($GUEST_CRASH): starting it once more"
        milestone guest_retry "$GUEST" "$GUEST_CRASH"
        GUEST_RETRIED=" (the guest was started twice: the first boot died in early boot: $GUEST_CRASH)"
        # The crashed domain can hold its name a little longer (seen: "Domain with name ...
        # already exists" from the second xl create): make sure it is gone first.
        xl destroy "$GUEST" >/dev/null 2>&1
        wait_for 30 _guest_gone "$GUEST" || log "warning: a domain named $GUEST still exists"
        guest_start "$1"
        guest_wait "$GUEST" "$2" || result FAILURE "guest $GUEST still running after $2 s"
    fi
    [ -z "$GUEST_CRASH" ] || result FAILURE "guest $GUEST crashed: $GUEST_CRASH"
}
