#!/bin/sh
# `--platform all` with the platforms converted at once (--jobs, default
# the number of CPUs) against one after the other (-j 1), issue 24. The
# busybox-multi fixture (amd64, arm64) with each arch's Debian cloud
# kernel (scripts/fetch-kernel.sh): the root is small, so the time is the
# kernel stages (a .deb's xz, the initramfs's zstd), one core each.
# $BENCH_RUNS times each, alternating (wall seconds, GNU time); the
# outputs of both are checked to be the same bytes. Prints the medians'
# ratio.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/bench-lib.sh"
RUNS=${BENCH_RUNS:-3}
W=$(mktemp -d "${TMPDIR:-/tmp}/c2vm-bench-multi-XXXXXX")
trap 'rm -rf "$W"' EXIT
BIN=$(c2vm_bin "$W")
IMG=$(sh "$ROOT/testdata/mkfixtures.sh")/busybox-multi
K="amd64=$(sh "$ROOT/scripts/fetch-kernel.sh" amd64),arm64=$(sh "$ROOT/scripts/fetch-kernel.sh" arm64)"

# convert NAME JOBS: one conversion's wall seconds, appended to $W/NAME;
# the sha256 of every file it wrote into $W/NAME.sums.
convert() {
	rm -rf "$W/out"
	/usr/bin/time -f '%e' -o "$W/t" "$BIN" convert -q --platform all -j "$2" --kernel "$K" "oci:$IMG:latest" -o "$W/out" >"$W/err" 2>&1 || { cat "$W/err" >&2; exit 1; }
	cat "$W/t" >>"$W/$1"
	(cd "$W/out" && find . -type f | sort | xargs sha256sum) >"$W/$1.sums"
}

i=0
while [ "$i" -lt "$RUNS" ]; do
	convert seq 1
	convert par 0
	i=$((i + 1))
done
cmp -s "$W/seq.sums" "$W/par.sums" || { echo "bench-multi: -j 1 and -j 0 outputs differ" >&2; diff "$W/seq.sums" "$W/par.sums" >&2; exit 1; }
s=$(median <"$W/seq")
p=$(median <"$W/par")
goal "--platform all at once / one after the other ($(printf '%.2f s / %.2f s' "$p" "$s"))" "$p" "$s" "< 1"
