#!/bin/sh
# Installs what c2vm's build, demo and tests need on Debian 12 (bookworm):
# QEMU for both guest arches, the image tools that make test fixtures, and
# the filesystem checkers that verify c2vm's output. Idempotent: apt runs
# only when something is missing. Go itself is expected at /usr/local/go
# or on PATH.
set -eu

PKGS="qemu-system-x86 qemu-system-arm qemu-system-misc qemu-user-static umoci skopeo busybox-static
e2fsprogs squashfs-tools squashfs-tools-ng cpio zstd xz-utils gzip attr libcap2-bin
libvirt-clients libxml2-utils shellcheck time util-linux jq make bc iproute2 curl procps gcc gcc-12
cryptsetup-bin docker-registry apache2-utils
ovmf qemu-efi-aarch64 systemd-boot-efi qemu-utils dosfstools fdisk mtools
buildah debootstrap chrpath diffstat gawk lz4 file locales bash-completion erofs-utils
python3 ca-certificates openssl
rpm sbsigntool docker.io podman tmux"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# arm64 packages (busybox-static:arm64 for the arm64 fixture) are fetched
# with `apt-get download`, which needs the foreign architecture listed.
need_update=
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	$SUDO dpkg --add-architecture arm64
	need_update=1
fi

missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -n "$missing" ] && need_update=1
if [ -n "$need_update" ]; then
	$SUDO apt-get update -qq
fi
if [ -n "$missing" ]; then
	echo "install-deps: installing$missing" >&2
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || {
	echo "install-deps: Go 1.26 is needed (https://go.dev/dl/), not found on PATH or in /usr/local/go" >&2
	exit 1
}
