SUMMARY = "Convert a container image into a bootable VM"
DESCRIPTION = "c2vm flattens an OCI or Docker image into an ext4 or squashfs root \
filesystem, adds a kernel and an initramfs holding a static Go init, and writes \
QEMU, libvirt, Xen and Firecracker configurations."
HOMEPAGE = "https://github.com/c2vm/c2vm"
SECTION = "devel"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://src/${GO_IMPORT}/LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

# A commit whose go.mod oe-core's Go (1.26.6) builds without a
# toolchain download: go 1.26.3. c2vm-go-mods.inc must match its go.sum
# (internal/yoctomods regenerates it; its test checks it is current).
SRC_URI = "git://github.com/c2vm/c2vm.git;protocol=https;branch=main;destsuffix=${GO_SRCURI_DESTSUFFIX}"
SRCREV = "632142dcf728d9229ef7ac9351c30ab8012c0296"
PV = "0.1+git"

require ${BPN}-go-mods.inc

GO_IMPORT = "github.com/c2vm/c2vm"
GO_INSTALL = "${GO_IMPORT}/cmd/c2vm"

inherit go-mod

# Modules come only from what do_fetch put in the module cache, and the Go
# of the build is the one used (no toolchain switch for a newer go line).
export GOPROXY = "off"
export GOTOOLCHAIN = "local"

# c2vm embeds a static guest init per VM arch (initramfs/init.go:
# //go:embed all:bin, the Makefile's initbin), so they are built first,
# without cgo, whatever the recipe's own target is.
C2VM_INIT_ARCHES ?= "amd64 arm64 riscv64"
C2VM_INIT_LDFLAGS = "-s -w -buildid="

do_compile:prepend() {
	for arch in ${C2VM_INIT_ARCHES}; do
		env -u GOARM -u GO386 -u GOMIPS CGO_ENABLED=0 GOOS=linux GOARCH=$arch \
			${GO} build -trimpath -modcacherw -ldflags="${C2VM_INIT_LDFLAGS}" \
			-o ${S}/src/${GO_IMPORT}/initramfs/bin/c2vm-init-$arch ${GO_IMPORT}/cmd/c2vm-init
	done
}

# go_do_install also ships the sources (${PN}-dev); c2vm is in ${bindir}.
# At run time it reads kernel .debs compressed with xz through xz when
# present, and makes data disks with e2fsprogs' mke2fs.
RDEPENDS:${PN} += "xz e2fsprogs-mke2fs"
RDEPENDS:${PN}-dev += "bash"

BBCLASSEXTEND = "native nativesdk"
