#!/bin/sh
# Fetches Debian's cloud kernel package for ARCH (amd64 or arm64) into
# $C2VM_CACHE/kernels with `apt-get download` and prints its path. The
# linux-image-cloud-ARCH metapackage is resolved to the versioned package
# that holds the kernel and its modules. Idempotent.
set -eu
ARCH=${1:?usage: fetch-kernel.sh amd64|arm64}
CACHE=${C2VM_CACHE:-$HOME/.cache/c2vm}
DIR=$CACHE/kernels
mkdir -p "$DIR"
exec 9>"$DIR/.lock-$ARCH"
flock 9
# The newest versioned package the metapackage depends on (Debian 12:
# linux-image-6.1.0-N-cloud-ARCH; the -unsigned one on arm64 carries the
# same kernel).
PKG=$(apt-cache depends "linux-image-cloud-$ARCH:$ARCH" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$PKG" ]; then
	echo "fetch-kernel: cannot resolve linux-image-cloud-$ARCH (apt-get update? for arm64: dpkg --add-architecture arm64)" >&2
	exit 1
fi
PKG=${PKG%%:*}
DEB=$(ls "$DIR"/"${PKG}"_*_"$ARCH".deb 2>/dev/null | head -1 || true)
if [ -z "$DEB" ]; then
	(cd "$DIR" && apt-get download -q -o APT::Sandbox::User=root "$PKG:$ARCH" >/dev/null)
	DEB=$(ls "$DIR"/"${PKG}"_*_"$ARCH".deb | head -1)
fi
echo "$DEB"
