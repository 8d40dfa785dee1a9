#!/bin/sh
# Compares the c2vm erofs writer with mkfs.erofs, and with c2vm's squashfs,
# in one run on one machine: wall time, CPU, peak RSS (GNU time) and
# output size.
#   c2vm erofs:         layer tar → rootfs.Flatten → erofs.Write (lz4hc, 64 KiB pclusters)
#   mkfs.erofs -zlz4hc: the same tree extracted (erofs-utils' default pcluster, 4 KiB)
#   mkfs.erofs -zlz4hc -C65536: the same pcluster size as c2vm's
#   c2vm squashfs:      the same tar (zstd), for scale
# Trees: as rootfs/squashfs/bench/compare.sh (which makes them; this script
# makes the generated one when it is missing).
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
CACHE=${C2VM_CACHE:-$HOME/.cache/c2vm}/bench
W=$(mktemp -d "${TMPDIR:-/tmp}/erofsbench-XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$CACHE"
(cd "$ROOT" && go build -o "$W/bench" ./rootfs/bench)
if [ ! -f "$CACHE/gen.tar" ]; then
	rm -rf "$CACHE/gen"
	"$W/bench" gen -tar "$CACHE/gen.tar.tmp" -dir "$CACHE/gen"
	mv "$CACHE/gen.tar.tmp" "$CACHE/gen.tar"
fi

# measure NAME OUTPUT CMD...: runs CMD under GNU time.
measure() {
	name=$1 out=$2
	shift 2
	rm -f "$out"
	sync
	/usr/bin/time -f '%e %U %S %M' -o "$W/time" "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; exit 1; }
	set -- $(cat "$W/time")
	printf '%-34s %8s %8s %12d %14d\n' "$name" "$1" "$(echo "$2 + $3" | bc)" $(($4 / 1024)) "$(stat -c %s "$out")"
	rm -f "$out"
}

printf '%-34s %8s %8s %12s %14s\n' "tree / writer" "wall s" "cpu s" "peak RSS MB" "output bytes"
for tree in gen minbase; do
	[ -f "$CACHE/$tree.tar" ] || continue
	echo "$tree: $(du -sm "$CACHE/$tree" | cut -f1) MB, $(find "$CACHE/$tree" | wc -l) names"
	measure "  c2vm erofs (lz4hc)" "$W/c2vm.erofs" "$W/bench" write -format erofs -i "$CACHE/$tree.tar" -o "$W/c2vm.erofs"
	measure "  c2vm erofs (lz4)" "$W/c2vm.erofs" "$W/bench" write -format erofs -comp lz4 -i "$CACHE/$tree.tar" -o "$W/c2vm.erofs"
	measure "  mkfs.erofs -zlz4hc" "$W/mk.erofs" mkfs.erofs --quiet -zlz4hc -T0 "$W/mk.erofs" "$CACHE/$tree"
	measure "  mkfs.erofs -zlz4hc -C65536" "$W/mk.erofs" mkfs.erofs --quiet -zlz4hc -C65536 -T0 "$W/mk.erofs" "$CACHE/$tree"
	measure "  c2vm squashfs (zstd)" "$W/c2vm.sqfs" "$W/bench" write -i "$CACHE/$tree.tar" -o "$W/c2vm.sqfs"
done
