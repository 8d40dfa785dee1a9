#!/bin/sh
# Fetches Debian's systemd EFI stub for ARCH (amd64 or arm64) — the
# systemd-boot-efi package of that architecture, with `apt-get download`
# as fetch-kernel.sh does for kernels — into $C2VM_CACHE/efi-stub and
# prints the stub's path, for `c2vm convert --disk --efi-stub`. On a host
# of the same architecture, installing systemd-boot-efi gives the same
# file under /usr/lib/systemd/boot/efi. Idempotent.
set -eu
ARCH=${1:?usage: fetch-efi-stub.sh amd64|arm64}
case $ARCH in
amd64) STUB=linuxx64.efi.stub ;;
arm64) STUB=linuxaa64.efi.stub ;;
*) echo "fetch-efi-stub: no systemd EFI stub for $ARCH" >&2; exit 1 ;;
esac
CACHE=${C2VM_CACHE:-$HOME/.cache/c2vm}
DIR=$CACHE/efi-stub/$ARCH
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
OUT=$DIR/usr/lib/systemd/boot/efi/$STUB
if [ ! -f "$OUT" ]; then
	rm -f "$DIR"/*.deb
	(cd "$DIR" && apt-get download -q -o APT::Sandbox::User=root "systemd-boot-efi:$ARCH" >/dev/null) || {
		echo "fetch-efi-stub: apt-get download systemd-boot-efi:$ARCH failed (apt-get update? for arm64: dpkg --add-architecture arm64)" >&2
		exit 1
	}
	dpkg-deb -x "$DIR"/systemd-boot-efi_*_"$ARCH".deb "$DIR"
fi
echo "$OUT"
