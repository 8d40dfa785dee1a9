SUMMARY = "Example: core-image-minimal as a VM, through c2vm"
DESCRIPTION = "Converts the OCI image of core-image-minimal into VM artifacts \
with the MACHINE's kernel. Needs meta-virtualization's image-oci for the OCI \
output: IMAGE_FSTYPES:append:pn-core-image-minimal = \" oci\" in local.conf."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

C2VM_IMAGE_RECIPE = "core-image-minimal"
C2VM_ARGS = "--memory 256"

inherit c2vm-image nopackages

# Machine specific (its kernel), needs no compiler, and needs
# meta-virtualization for its input: not part of `bitbake world`.
PACKAGE_ARCH = "${MACHINE_ARCH}"
INHIBIT_DEFAULT_DEPS = "1"
EXCLUDE_FROM_WORLD = "1"

# Nothing to fetch, build or package: the artifacts are deployed.
deltask do_fetch
deltask do_unpack
deltask do_patch
deltask do_configure
deltask do_compile
deltask do_install
