#!/bin/bash
# Tier 2: boot the PVH kernel in plain QEMU (no Xen) and check its 0xE9 log.
#
#   kernel/tests/qemu-test.sh <kernel-elf> <out-dir>
#
# Each case boots with a command line, expects an exact QEMU exit status
# (isa-debug-exit: 33 = success, 35 = failure) and exact log lines (the
# "[time] " prefix stripped; a line given as "~TEXT" only has to contain TEXT).
# Any mismatch fails the whole test.
set -u -o pipefail

KERNEL=${1:?usage: qemu-test.sh KERNEL OUTDIR}
OUT=${2:?usage: qemu-test.sh KERNEL OUTDIR}
QEMU=${QEMU:-qemu-system-x86_64}
TIMEOUT_S=${QEMU_TIMEOUT_S:-30}
mkdir -p "$OUT"
failures=0

# run_case NAME EXPECTED_STATUS CMDLINE LINE...
run_case() {
    local name=$1 expected=$2 cmdline=$3
    shift 3
    local log="$OUT/$name.log" start end status
    rm -f "$log"
    start=$(date +%s%N)
    timeout "$TIMEOUT_S" "$QEMU" -kernel "$KERNEL" -append "$cmdline" -m 128 \
        -nodefaults -display none -no-reboot \
        -debugcon "file:$log" -device isa-debug-exit,iobase=0xf4,iosize=0x04
    status=$?
    end=$(date +%s%N)
    local ok=1
    if [ "$status" -ne "$expected" ]; then
        echo "qemu-test: $name: exit status $status, expected $expected" >&2
        ok=0
    fi
    local stripped
    stripped=$(sed -e 's/^\[[^]]*\] //' "$log" 2>/dev/null)
    for line in "$@"; do
        local found
        case "$line" in
            "~"*) grep -Fq -- "${line#\~}" <<<"$stripped"; found=$? ;;
            *) grep -Fxq -- "$line" <<<"$stripped"; found=$? ;;
        esac
        if [ "$found" -ne 0 ]; then
            echo "qemu-test: $name: missing line: $line" >&2
            ok=0
        fi
    done
    if [ "$ok" -eq 1 ]; then
        echo "qemu-test: $name ok ($(( (end - start) / 1000000 )) ms)"
    else
        echo "---- $log ----" >&2
        cat "$log" >&2
        failures=$((failures + 1))
    fi
}

run_case boot 33 "selftest fps=60 demo=plasma loglevel=info" \
    "not on Xen: no Xen CPUID leaves" \
    "memmap: 0x0000100000-0x0007fe0000 type 1" \
    'cmdline: "selftest fps=60 demo=plasma loglevel=info"' \
    'options: selftest=true idle=false frames=None fps=Some(60) buffers=None demo=Some("plasma") loglevel=Info crash=None' \
    "plain PVH boot test done"

run_case empty-cmdline 33 "" \
    'cmdline: ""' \
    'options: selftest=false idle=false frames=None fps=None buffers=None demo=None loglevel=Info crash=None' \
    "plain PVH boot test done"

run_case unknown-option 35 "selftest bogus=1" \
    'ERROR: fatal: bad command line: unknown option `bogus` (known: selftest, idle, frames=N, fps=N, buffers=N, demo=NAME, loglevel=L, crash=K)'

run_case unknown-demo 35 "demo=nosuch" \
    'ERROR: fatal: unknown demo `nosuch`; valid: testcard, bounce, plasma, clock, stats, starfield, rotozoom'

run_case frames-zero 33 "frames=0 idle" \
    'options: selftest=false idle=true frames=Some(0) fps=None buffers=None demo=None loglevel=Info crash=None' \
    "plain PVH boot test done"

run_case bad-number 35 "fps=sixty" \
    'ERROR: fatal: bad command line: option `fps`: `sixty` is not a decimal number'

run_case panic 35 "crash=panic" \
    "~ERROR: panic at kernel/src/main.rs:" \
    "~: crash=panic requested on the command line"

run_case page-fault 35 "crash=fault" \
    "crash=fault: reading 0x1000000000, above the identity map" \
    "~ERROR: CPU exception 14 (#PF page fault), error code 0x0, rip 0x" \
    "~, cr2 0x1000000000"

if [ "$failures" -ne 0 ]; then
    echo "qemu-test: $failures case(s) failed" >&2
    exit 1
fi
echo "qemu-test: all cases passed"
