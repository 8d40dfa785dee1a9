#!/bin/sh
# Compares the c2vm squashfs writer with mksquashfs and tar2sqfs, in one
# run on one machine: wall time, peak RSS (GNU time) and output size.
#   c2vm:       layer tar → rootfs.Flatten → squashfs.Write (zstd)
#   mksquashfs: the same tree extracted, -comp zstd (its default level 15)
#   tar2sqfs:   the same tar, -c zstd
# Trees: the generated ~300 MB / 20,000-file tree, and a Debian bookworm
# minbase (debootstrap) when $C2VM_CACHE/bench/minbase exists
# (debootstrap --variant=minbase bookworm $C2VM_CACHE/bench/minbase).
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
CACHE=${C2VM_CACHE:-$HOME/.cache/c2vm}/bench
# shellcheck source=rootfs/bench/lib.sh
. "$ROOT/rootfs/bench/lib.sh"
if [ -d "$CACHE/minbase/usr" ] && [ ! -f "$CACHE/minbase.tar" ]; then
	tar --xattrs --numeric-owner -C "$CACHE/minbase" -cf "$CACHE/minbase.tar.tmp" .
	mv "$CACHE/minbase.tar.tmp" "$CACHE/minbase.tar"
fi

for tree in gen minbase; do
	[ -f "$CACHE/$tree.tar" ] || continue
	echo "$tree: $(du -sm "$CACHE/$tree" | cut -f1) MB, $(find "$CACHE/$tree" | wc -l) names"
	measure "  c2vm (zstd)" "$W/c2vm.sqfs" "$W/bench" write -i "$CACHE/$tree.tar" -o "$W/c2vm.sqfs"
	measure "  mksquashfs -comp zstd" "$W/mk.sqfs" mksquashfs "$CACHE/$tree" "$W/mk.sqfs" -comp zstd -noappend -quiet -no-progress
	measure "  tar2sqfs -c zstd" "$W/t2s.sqfs" sh -c "tar2sqfs -q -c zstd -f '$W/t2s.sqfs' < '$CACHE/$tree.tar'"
done
