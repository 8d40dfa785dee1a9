# c2vm-image: turn a container image into VM artifacts (kernel, initramfs,
# root filesystem, qemu.sh, libvirt.xml, xl.cfg, firecracker.json) with the
# MACHINE's kernel, deployed to DEPLOY_DIR_IMAGE/${C2VM_DEPLOY_NAME}.
#
# A recipe that inherits it sets one of:
#   C2VM_IMAGE         any IMAGE c2vm convert takes: a path, oci:PATH[:REF],
#                      oci-archive:PATH[:REF], docker-archive:PATH[:REF]
#   C2VM_IMAGE_RECIPE  an image recipe of this build whose OCI output is
#                      converted (IMAGE_FSTYPES += "oci", meta-virtualization's
#                      image-oci); its do_image_complete runs first
# and optionally C2VM_ARGS (more convert flags: --rootfs ext4, --memory 512,
# --publish 8080:80, ...).

inherit deploy

C2VM_IMAGE ?= ""
C2VM_IMAGE_RECIPE ?= ""
# image-oci's output for C2VM_IMAGE_RECIPE: the OCI layout behind its
# IMAGE_LINK_NAME (${IMAGE_BASENAME}-${MACHINE}), "-oci" appended.
C2VM_IMAGE_RECIPE_OCI ?= "oci:${DEPLOY_DIR_IMAGE}/${C2VM_IMAGE_RECIPE}-${MACHINE}-oci"
C2VM_SOURCE = "${@d.getVar('C2VM_IMAGE') or (d.getVar('C2VM_IMAGE_RECIPE') and d.getVar('C2VM_IMAGE_RECIPE_OCI')) or ''}"

# The image's platform from the target arch as meta-virtualization's
# image-oci names it (OCI_IMAGE_ARCH: oe.go.map_arch of TARGET_ARCH).
C2VM_PLATFORM ?= "linux/${@oe.go.map_arch(d.getVar('TARGET_ARCH'))}"

# The MACHINE's kernel as virtual/kernel deploys it: KERNEL_IMAGETYPE, and
# its modules as the modules-${MACHINE}.tgz tarball (kernel.bbclass
# do_deploy) rather than a lib/modules tree.
C2VM_KERNEL ?= "${DEPLOY_DIR_IMAGE}/${KERNEL_IMAGETYPE}"
C2VM_KERNEL_MODULES ?= "${DEPLOY_DIR_IMAGE}/modules-${MACHINE}.tgz"

C2VM_ARGS ?= ""
C2VM_DEPLOY_NAME ?= "${PN}-${MACHINE}.vm"

python () {
    image, recipe = d.getVar('C2VM_IMAGE'), d.getVar('C2VM_IMAGE_RECIPE')
    if bool(image) == bool(recipe):
        bb.fatal("%s: c2vm-image needs exactly one of C2VM_IMAGE and C2VM_IMAGE_RECIPE" % d.getVar('PN'))
    if recipe:
        d.appendVarFlag('do_c2vm_convert', 'depends', ' %s:do_image_complete' % recipe)
}

C2VM_WORK = "${WORKDIR}/c2vm"

do_c2vm_convert() {
	rm -rf ${C2VM_WORK}
	mkdir -p ${C2VM_WORK}/kernel
	# c2vm takes a directory with the kernel and lib/modules (README: --kernel).
	cp -L ${C2VM_KERNEL} ${C2VM_WORK}/kernel/${KERNEL_IMAGETYPE}
	if [ -e ${C2VM_KERNEL_MODULES} ]; then
		tar -xzf ${C2VM_KERNEL_MODULES} -C ${C2VM_WORK}/kernel
	fi
	c2vm convert -q --platform ${C2VM_PLATFORM} --kernel ${C2VM_WORK}/kernel \
		${C2VM_ARGS} -o ${C2VM_WORK}/${C2VM_DEPLOY_NAME} ${C2VM_SOURCE}
}
do_c2vm_convert[depends] += "c2vm-native:do_populate_sysroot virtual/kernel:do_deploy"
do_c2vm_convert[vardeps] += "C2VM_SOURCE C2VM_PLATFORM C2VM_ARGS"
# The kernel and modules are read from DEPLOY_DIR_IMAGE: a kernel rebuild
# reruns the conversion through the do_deploy dependency above.
do_c2vm_convert[cleandirs] = "${C2VM_WORK}"
addtask c2vm_convert after do_prepare_recipe_sysroot before do_deploy

do_deploy() {
	cp -a ${C2VM_WORK}/${C2VM_DEPLOY_NAME} ${DEPLOYDIR}/
}
addtask deploy after do_c2vm_convert before do_build
