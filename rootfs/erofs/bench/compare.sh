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
# shellcheck source=rootfs/bench/lib.sh
. "$ROOT/rootfs/bench/lib.sh"

for tree in gen minbase; do
	[ -f "$CACHE/$tree.tar" ] || continue
	echo "$tree: $(du -sm "$CACHE/$tree" | cut -f1) MB, $(find "$CACHE/$tree" | wc -l) names"
	measure "  c2vm erofs (lz4hc)" "$W/c2vm.erofs" "$W/bench" write -format erofs -i "$CACHE/$tree.tar" -o "$W/c2vm.erofs"
	measure "  c2vm erofs (lz4)" "$W/c2vm.erofs" "$W/bench" write -format erofs -comp lz4 -i "$CACHE/$tree.tar" -o "$W/c2vm.erofs"
	measure "  mkfs.erofs -zlz4hc" "$W/mk.erofs" mkfs.erofs --quiet -zlz4hc -T0 "$W/mk.erofs" "$CACHE/$tree"
	measure "  mkfs.erofs -zlz4hc -C65536" "$W/mk.erofs" mkfs.erofs --quiet -zlz4hc -C65536 -T0 "$W/mk.erofs" "$CACHE/$tree"
	measure "  c2vm squashfs (zstd)" "$W/c2vm.sqfs" "$W/bench" write -i "$CACHE/$tree.tar" -o "$W/c2vm.sqfs"
done
