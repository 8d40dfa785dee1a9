#!/bin/sh
# Wall time and peak RSS of flatten+ext4 (BenchmarkFlattenExt4, one
# iteration) against umoci unpack + mkfs.ext4 -d on the same generated layer.
# Run from the repository root: rootfs/ext4/bench/compare.sh
set -eu
cache=${C2VM_CACHE:-$HOME/.cache/c2vm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/ext4.test" ./rootfs/ext4/
# The first run generates and caches the layer; measure the second.
"$work/ext4.test" -test.run '^$' -test.bench FlattenExt4 -test.benchtime 1x >/dev/null
layer=$(ls "$cache"/bench/flatten-*.tar.gz | head -1)
measure() { # name, command...
	name=$1; shift
	/usr/bin/time -f "$name: %e s wall, %M KB peak RSS" "$@" >/dev/null 2>"$work/time" || { cat "$work/time"; exit 1; }
	tail -1 "$work/time"
}
measure "c2vm flatten+ext4" "$work/ext4.test" -test.run '^$' -test.bench FlattenExt4 -test.benchtime 1x
umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:bench" >/dev/null
gzip -dc "$layer" >"$work/layer.tar"
umoci raw add-layer --image "$work/oci:bench" "$work/layer.tar" >/dev/null
rm "$work/layer.tar"
measure "umoci unpack" umoci unpack --rootless --image "$work/oci:bench" "$work/bundle"
truncate -s 1G "$work/img"
measure "mkfs.ext4 -d" mkfs.ext4 -q -F -d "$work/bundle/rootfs" "$work/img"
