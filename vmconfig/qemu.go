package vmconfig

import (
	"fmt"
	"io"
	"strings"
	"text/template"
)

// QEMU describes how to run a VM arch under QEMU.
type QEMU struct {
	Binary  string
	Machine []string // -M and -cpu arguments
}

// QEMUFor returns QEMU's binary and machine for a VM arch.
func QEMUFor(arch string) (QEMU, error) {
	switch arch {
	case "amd64":
		return QEMU{Binary: "qemu-system-x86_64", Machine: []string{"-M", "q35"}}, nil
	case "arm64":
		return QEMU{Binary: "qemu-system-aarch64", Machine: []string{"-M", "virt", "-cpu", "max"}}, nil
	case "riscv64":
		return QEMU{Binary: "qemu-system-riscv64", Machine: []string{"-M", "virt"}}, nil
	}
	return QEMU{}, fmt.Errorf("no QEMU machine for VM arch %q", arch)
}

// QEMUArgs is the one place that builds QEMU's command line, for qemu.sh
// and `c2vm run` alike: direct kernel boot, the root disk as a read-only
// virtio-blk drive, the serial console on stdio, no reboot (the guest's
// poweroff or a panic ends QEMU). accel is "kvm" or "tcg"; dir prefixes the
// artifact names.
func QEMUArgs(vm VM, accel, dir, appendArgs string) ([]string, error) {
	q, err := QEMUFor(vm.Arch)
	if err != nil {
		return nil, err
	}
	args := append([]string{}, q.Machine...)
	args = append(args,
		"-accel", accel,
		"-m", fmt.Sprint(vm.memory()),
		"-smp", fmt.Sprint(vm.cpus()),
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", dir+vm.Kernel,
		"-initrd", dir+vm.Initrd,
		"-drive", "file="+dir+vm.Rootfs+",if=virtio,format=raw,readonly=on",
		"-append", strings.TrimSpace("console="+Console(vm.Arch)+" panic=-1 "+vm.Cmdline+" "+appendArgs),
	)
	return args, nil
}

// QEMUScript writes qemu.sh.
type QEMUScript struct{}

// Name implements Target.
func (QEMUScript) Name() string { return "qemu.sh" }

var qemuTmpl = template.Must(template.New("qemu.sh").Parse(`#!/bin/sh
# Boots {{.Name}} ({{.Arch}}) with QEMU: the container's output on this
# terminal, the VM powers off when it exits; its last console line is
# C2VM_EXIT_STATUS=<n>. Written by c2vm; runs from any directory.
#   C2VM_ACCEL=auto|kvm|tcg  accelerator (auto: KVM only when it is this
#                            host's arch and a probe VM really runs)
#   C2VM_MEMORY, C2VM_CPUS   override memory (MiB) and CPUs
#   C2VM_APPEND              extra kernel arguments (e.g. c2vm.debug=1)
#   extra arguments are passed to QEMU.
set -eu
DIR=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
accel=${C2VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
	accel=tcg
	if [ "$(uname -m)" = "{{.UnameArch}}" ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		# /dev/kvm can exist and still hang guests: boot the VM itself with
		# KVM for a few seconds and use KVM only if it reaches the kernel.
		if timeout 10 {{.Binary}} -accel kvm -M {{.MachineName}} -m 64 -nographic -no-reboot \
			-kernel "$DIR/{{.Kernel}}" -append "console={{.Console}} panic=-1 rdinit=/nonexistent" 2>/dev/null | grep -q "Linux version"; then
			accel=kvm
		fi
	fi
fi
exec {{.Binary}} {{.MachineArgs}} -accel "$accel" \
	-m "${C2VM_MEMORY:-{{.Memory}}}" -smp "${C2VM_CPUS:-{{.CPUs}}}" \
	-nographic -no-reboot -nic none \
	-kernel "$DIR/{{.Kernel}}" -initrd "$DIR/{{.Initrd}}" \
	-drive "file=$DIR/{{.Rootfs}},if=virtio,format=raw,readonly=on" \
	-append "console={{.Console}} panic=-1 {{.Cmdline}} ${C2VM_APPEND:-}" \
	"$@"
`))

// Write implements Target.
func (QEMUScript) Write(w io.Writer, vm VM) error {
	q, err := QEMUFor(vm.Arch)
	if err != nil {
		return err
	}
	uname := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "riscv64": "riscv64"}[vm.Arch]
	return qemuTmpl.Execute(w, map[string]any{
		"Name": vm.Name, "Arch": vm.Arch, "UnameArch": uname, "Binary": q.Binary,
		"MachineArgs": strings.Join(q.Machine, " "), "MachineName": q.Machine[1],
		"Memory": vm.memory(), "CPUs": vm.cpus(), "Kernel": vm.Kernel, "Initrd": vm.Initrd,
		"Rootfs": vm.Rootfs, "Console": Console(vm.Arch), "Cmdline": vm.Cmdline,
	})
}
