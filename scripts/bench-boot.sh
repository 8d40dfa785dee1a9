#!/bin/sh
# Boot-to-port against boot-to-exit (issue 24: ≤ 1.2×). The busybox
# fixture with Debian's cloud kernel (scripts/fetch-kernel.sh), converted
# once, booted by `c2vm run --accel $BENCH_ACCEL` (default tcg: KVM does
# not work everywhere) $BENCH_RUNS times each way, alternating; each time
# runs from `c2vm run` starting (it starts QEMU at once) to
#   exit: the container's `true` exited (c2vm run returned 0), or
#   port: busybox httpd answered HTTP on the published port (any status:
#         QEMU's user-mode forward accepts a connection before the guest
#         listens, so a TCP connect proves nothing; polled every 50 ms).
# Prints the medians and their ratio.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/bench-lib.sh"
need boot-to-port qemu-system-x86_64 curl python3
RUNS=${BENCH_RUNS:-3}
ACCEL=${BENCH_ACCEL:-tcg}
W=$(mktemp -d "${TMPDIR:-/tmp}/c2vm-bench-boot-XXXXXX")
RP=
trap '[ -z "$RP" ] || kill "$RP" 2>/dev/null; rm -rf "$W"' EXIT
BIN=$(c2vm_bin "$W")
IMG=$(sh "$ROOT/testdata/mkfixtures.sh")/busybox-amd64
KERNEL=$(sh "$ROOT/scripts/fetch-kernel.sh" amd64)
"$BIN" convert -q --kernel "$KERNEL" -o "$W/vm" "oci:$IMG:latest"

# toexit: one boot of `true`, its seconds.
toexit() {
	t0=$(now)
	"$BIN" run --accel "$ACCEL" --timeout 300s "$W/vm" -- true >"$W/out" 2>&1 || { cat "$W/out" >&2; exit 1; }
	since "$t0"
}

# toport: one boot of busybox httpd, the seconds until it answered; then
# the VM is stopped (power button, 1 s for httpd).
toport() {
	port=$(freeport)
	t0=$(now)
	"$BIN" run --accel "$ACCEL" --timeout 300s --stop-timeout 1s -p "127.0.0.1:$port:8080" "$W/vm" -- busybox httpd -f -p 8080 -h / >"$W/out" 2>&1 &
	RP=$!
	until [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port/")" != 000 ]; do
		kill -0 "$RP" 2>/dev/null || { cat "$W/out" >&2; exit 1; }
		sleep 0.05
	done
	since "$t0"
	kill -TERM "$RP"
	wait "$RP" || true
	RP=
}

i=0
while [ "$i" -lt "$RUNS" ]; do
	toexit >>"$W/exit"
	toport >>"$W/port"
	i=$((i + 1))
done
e=$(median <"$W/exit")
p=$(median <"$W/port")
goal "boot-to-port / boot-to-exit ($ACCEL; $(printf '%.2f s / %.2f s' "$p" "$e"))" "$p" "$e" "≤ 1.2"
