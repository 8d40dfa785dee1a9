#!/bin/sh
# A registry pull + convert against converting the local OCI layout
# (issue 24: ≤ 1.1×). The image (default: the bench image,
# testdata/mkfixtures.sh big) is pushed by skopeo to docker-registry
# (distribution) on loopback, plain HTTP, no auth; then converted to
# squashfs without a kernel from docker://127.0.0.1:PORT/bench:latest and
# from oci:IMAGE, $BENCH_RUNS (5) times each, alternating (wall and CPU
# seconds, GNU time). Prints the medians and the wall times' ratio.
#   sh scripts/bench-pull.sh [OCI-LAYOUT-DIR]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/bench-lib.sh"
need "registry pull" docker-registry skopeo curl python3
RUNS=${BENCH_RUNS:-5}
IMG=${1:-$(sh "$ROOT/testdata/mkfixtures.sh" big)/big/oci}
W=$(mktemp -d "${TMPDIR:-/tmp}/c2vm-bench-pull-XXXXXX")
REG=
trap '[ -z "$REG" ] || kill "$REG" 2>/dev/null; rm -rf "$W"' EXIT
BIN=$(c2vm_bin "$W")

HOST=127.0.0.1:$(freeport)
cat >"$W/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/storage
http:
  addr: $HOST
YML
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REG=$!
i=0
until curl -sf -o /dev/null "http://$HOST/v2/"; do
	i=$((i + 1))
	[ "$i" -lt 100 ] || { cat "$W/registry.log" >&2; exit 1; }
	sleep 0.1
done
skopeo copy -q --dest-tls-verify=false "oci:$IMG:latest" "docker://$HOST/bench:latest"

# convert NAME REF: one conversion's wall seconds, appended to $W/NAME,
# and its CPU seconds (user + system), to $W/NAME.cpu.
convert() {
	rm -rf "$W/out"
	sync
	/usr/bin/time -f '%e %U %S' -o "$W/t" "$BIN" convert -q --no-kernel --rootfs squashfs --tls-verify=false "$2" -o "$W/out" >"$W/err" 2>&1 || { cat "$W/err" >&2; exit 1; }
	read -r wall user sys <"$W/t"
	echo "$wall" >>"$W/$1"
	echo "$user + $sys" | bc >>"$W/$1.cpu"
}

i=0
while [ "$i" -lt "$RUNS" ]; do
	convert local "oci:$IMG:latest"
	convert pull "docker://$HOST/bench:latest"
	i=$((i + 1))
done
l=$(median <"$W/local")
p=$(median <"$W/pull")
printf 'registry pull + convert: median wall %.2f s, CPU %.2f s; the local layout'"'"'s: %.2f s, CPU %.2f s\n' \
	"$p" "$(median <"$W/pull.cpu")" "$l" "$(median <"$W/local.cpu")"
goal "registry pull + convert / local layout, wall" "$p" "$l" "≤ 1.1"
