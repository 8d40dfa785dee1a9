#!/bin/sh
# Builds c2vm's test images with real tools (umoci, skopeo, GNU tar,
# Debian's busybox-static) into $C2VM_CACHE/fixtures. See testdata/README.md
# for what each image holds. Idempotent: a stamp records this script's hash.
#
#   sh testdata/mkfixtures.sh         build (if needed) and print the dir
#   sh testdata/mkfixtures.sh path    same
#   sh testdata/mkfixtures.sh big     also the ~300 MB / 20k-file bench image
set -eu
CACHE=${C2VM_CACHE:-$HOME/.cache/c2vm}
OUT=$CACHE/fixtures
SELF=$(cd "$(dirname "$0")" && pwd)/mkfixtures.sh
STAMP=$OUT/.stamp
HASH=$(sha256sum "$SELF" | cut -d' ' -f1)
export SOURCE_DATE_EPOCH=1700000000

log() { echo "mkfixtures: $*" >&2; }

# busybox_for ARCH: path of a static busybox for ARCH from Debian's package.
busybox_for() {
	d=$CACHE/debs/busybox-static-$1
	if [ ! -x "$d/bin/busybox" ]; then
		mkdir -p "$CACHE/debs"
		(cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "busybox-static:$1" >/dev/null 2>&1) || {
			log "apt-get download busybox-static:$1 failed (arm64: dpkg --add-architecture arm64 && apt-get update)"
			exit 1
		}
		rm -rf "$d" && mkdir -p "$d"
		dpkg-deb -x "$(ls -t "$CACHE"/debs/busybox-static_*_"$1".deb | head -1)" "$d"
	fi
	echo "$d/bin/busybox"
}

# layer1 ROOTFS BUSYBOX: the base layer's files.
layer1() {
	r=$1
	mkdir -p "$r/bin" "$r/etc" "$r/home/app" "$r/opq" "$r/usr/bin" "$r/devnode" "$r/tmp" "$r/usr/lib/binfmt.d"
	cp "$2" "$r/bin/busybox"
	for a in sh id echo cat ls env pwd sleep uname stat test true false kill grep head tail wc mount ps; do
		ln -sf busybox "$r/bin/$a"
	done
	cat >"$r/etc/passwd" <<-P
	root:x:0:0:root:/root:/bin/sh
	app:x:1000:1000:app:/home/app:/bin/sh
	nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	P
	cat >"$r/etc/group" <<-G
	root:x:0:
	wheel:x:10:app
	audio:x:29:app
	app:x:1000:
	nogroup:x:65534:
	G
	echo "only-app-reads-this" >"$r/home/app/secret.txt"
	chown -R 1000:1000 "$r/home/app"
	chmod 0750 "$r/home/app"
	chmod 0600 "$r/home/app/secret.txt"
	echo "this file is whited out by layer 2" >"$r/gone.txt"
	echo "hidden by the opaque dir of layer 3" >"$r/opq/old.txt"
	echo "setuid" >"$r/usr/bin/suid-file"
	chmod 4755 "$r/usr/bin/suid-file"
	echo "two names, one inode" >"$r/etc/hard-a"
	ln "$r/etc/hard-a" "$r/etc/hard-b"
	mknod "$r/devnode/null" c 1 3
	echo "xattrs here" >"$r/etc/xattr-file"
	setfattr -n user.c2vm -v hello "$r/etc/xattr-file"
	echo "capable" >"$r/usr/bin/cap-file"
	chmod 0755 "$r/usr/bin/cap-file"
	setcap cap_net_raw+ep "$r/usr/bin/cap-file"
	chmod 1777 "$r/tmp"
	# A systemd-binfmt file the image brings (registered at boot; its
	# magic never matches a real binary).
	echo ':c2vm-test:M::C2VMTEST::/bin/true:' >"$r/usr/lib/binfmt.d/c2vm-test.conf"
}

# build_arch ARCH: the busybox image as an OCI layout, a docker-archive and
# a zstd oci-archive.
build_arch() {
	arch=$1
	bb=$(busybox_for "$arch")
	img=$OUT/busybox-$arch
	w=$OUT/work-$arch
	rm -rf "$img" "$w" && mkdir -p "$w"
	umoci init --layout "$img"
	umoci new --image "$img:latest"
	umoci config --image "$img:latest" --os linux --architecture "$arch" \
		--created 2023-11-14T22:13:20Z --author c2vm-fixtures
	umoci unpack --image "$img:latest" "$w/bundle" >/dev/null
	layer1 "$w/bundle/rootfs" "$bb"
	umoci repack --refresh-bundle --image "$img:latest" "$w/bundle"
	# Layer 2: a deletion (umoci writes the .wh. whiteout) and a new file.
	rm "$w/bundle/rootfs/gone.txt"
	echo "hello from c2vm" >"$w/bundle/rootfs/etc/motd"
	umoci repack --image "$img:latest" "$w/bundle"
	# Layer 3: an opaque directory. umoci never writes .wh..wh..opq, so
	# this layer is a GNU tar archive added verbatim.
	mkdir -p "$w/l3/opq"
	echo "new content of an opaque dir" >"$w/l3/opq/new.txt"
	: >"$w/l3/opq/.wh..wh..opq"
	tar --numeric-owner --owner=0 --group=0 --mtime=@$SOURCE_DATE_EPOCH --sort=name \
		-C "$w/l3" -cf "$w/l3.tar" opq
	umoci raw add-layer --image "$img:latest" "$w/l3.tar"
	# The user is set last: umoci unpack resolves it against the rootfs.
	umoci config --image "$img:latest" \
		--config.user app --config.env FOO=bar --config.workingdir /home/app \
		--config.cmd /bin/sh --config.cmd -c --config.cmd 'id; echo hello from c2vm' \
		--created 2023-11-14T22:13:20Z
	umoci gc --layout "$img"
	rm -rf "$w"
	rm -f "$OUT/busybox-$arch.docker.tar" "$OUT/busybox-$arch.oci-zstd.tar"
	skopeo copy -q "oci:$img:latest" "docker-archive:$OUT/busybox-$arch.docker.tar:c2vm/busybox:$arch"
	skopeo copy -q --dest-compress-format zstd "oci:$img:latest" "oci-archive:$OUT/busybox-$arch.oci-zstd.tar:latest"
}

# blob FILE LAYOUT: store FILE as a blob of LAYOUT; prints "digest size".
blob() {
	d=$(sha256sum "$1" | cut -d' ' -f1)
	cp "$1" "$2/blobs/sha256/$d"
	echo "sha256:$d $(stat -c %s "$1")"
}

# build_multi: one layout holding both arches behind nested indexes
# (index.json → image index → manifests), as buildx writes them.
build_multi() {
	m=$OUT/busybox-multi
	rm -rf "$m" && mkdir -p "$m/blobs/sha256"
	cp "$OUT/busybox-amd64/oci-layout" "$m/"
	entries=
	for arch in amd64 arm64; do
		cp -n "$OUT/busybox-$arch"/blobs/sha256/* "$m/blobs/sha256/"
		desc=$(jq -c --arg a "$arch" '.manifests[0] | del(.annotations) | . + {platform: {os: "linux", architecture: $a}}' "$OUT/busybox-$arch/index.json")
		[ "$arch" = arm64 ] && desc=$(echo "$desc" | jq -c '.platform.variant = "v8"')
		entries="$entries${entries:+,}$desc"
	done
	echo "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[$entries]}" | jq -c . >"$m/inner.json"
	set -- $(blob "$m/inner.json" "$m")
	rm "$m/inner.json"
	jq -n -c --arg d "$1" --argjson s "$2" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
		manifests: [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
		annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' >"$m/index.json"
}

# build_big: ~300 MB in 20,000 files of deterministic content, one gzip
# layer, for the benchmarks.
build_big() {
	b=$OUT/big
	[ -f "$b/.done" ] && return
	rm -rf "$b" && mkdir -p "$b"
	w=$(mktemp -d "$OUT/.big-XXXXXX")
	umoci init --layout "$b/oci"
	umoci new --image "$b/oci:latest"
	umoci config --image "$b/oci:latest" --config.cmd /bin/true --created 2023-11-14T22:13:20Z
	umoci unpack --image "$b/oci:latest" "$w/bundle" >/dev/null
	( cd "$SELF_DIR" && go run ./internal/fixtures/gentree "$w/bundle/rootfs" 20000 300 )
	umoci repack --image "$b/oci:latest" "$w/bundle"
	rm -rf "$w"
	touch "$b/.done"
}

SELF_DIR=$(cd "$(dirname "$SELF")/.." && pwd)
mkdir -p "$OUT"
LOCK=$OUT/.lock
exec 9>"$LOCK"
flock 9
if [ "$(cat "$STAMP" 2>/dev/null)" != "$HASH" ]; then
	[ "$(id -u)" -eq 0 ] || { log "needs root (mknod, chown) to build fixtures"; exit 1; }
	for t in umoci skopeo jq setfattr setcap tar; do
		command -v $t >/dev/null || { log "$t is missing (run scripts/install-deps.sh)"; exit 1; }
	done
	log "building fixtures in $OUT"
	build_arch amd64
	build_arch arm64
	build_multi
	echo "$HASH" >"$STAMP"
fi
[ "${1:-}" = big ] && build_big
echo "$OUT"
