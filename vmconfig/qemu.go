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
// artifact names; appendArgs are extra kernel arguments.
func QEMUArgs(vm VM, accel, dir, appendArgs string) ([]string, error) {
	return qemuArgs(vm, accel, fmt.Sprint(vm.memory()), fmt.Sprint(vm.cpus()), dir, appendArgs)
}

// qemuArgs takes every variable part as a string so that qemu.sh can pass
// shell expressions (see shellWord).
func qemuArgs(vm VM, accel, memory, cpus, dir, appendArgs string) ([]string, error) {
	q, err := QEMUFor(vm.Arch)
	if err != nil {
		return nil, err
	}
	args := append([]string{}, q.Machine...)
	args = append(args,
		"-accel", accel,
		"-m", memory,
		"-smp", cpus,
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", dir+vm.Kernel,
		"-initrd", dir+vm.Initrd,
		"-drive", "file="+dir+vm.Rootfs+",if=virtio,format=raw,readonly=on",
		"-append", joinArgs("console="+Console(vm.Arch), "panic=-1", vm.Cmdline, appendArgs),
	)
	return args, nil
}

func joinArgs(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// Placeholders qemu.sh passes to qemuArgs; shellWord turns them into shell
// expressions. NUL cannot occur in a file name or argument.
const (
	phAccel  = "\x00accel\x00"
	phMemory = "\x00memory\x00"
	phCPUs   = "\x00cpus\x00"
	phDir    = "\x00dir\x00"
	phAppend = "\x00append\x00"
)

// shellWord double-quotes s for sh, escaping what sh expands inside double
// quotes, and replaces the placeholders with the script's variables.
func shellWord(s string, memory, cpus int) string {
	if strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=,./:+-") == "" {
		return s // nothing sh would expand or split
	}
	s = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s)
	s = strings.NewReplacer(
		phAccel, "$accel",
		phMemory, fmt.Sprintf("${C2VM_MEMORY:-%d}", memory),
		phCPUs, fmt.Sprintf("${C2VM_CPUS:-%d}", cpus),
		phDir, "$DIR/",
		" "+phAppend, "${C2VM_APPEND:+ $C2VM_APPEND}",
		phAppend, "${C2VM_APPEND:-}",
	).Replace(s)
	return `"` + s + `"`
}

// scriptArgs is QEMU's command line as sh words, one per line.
func scriptArgs(vm VM) (string, error) {
	args, err := qemuArgs(vm, phAccel, phMemory, phCPUs, phDir, phAppend)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i, a := range args {
		b.WriteString(shellWord(a, vm.memory(), vm.cpus()))
		if i+1 < len(args) && strings.HasPrefix(args[i+1], "-") {
			b.WriteString(" \\\n\t")
		} else {
			b.WriteString(" ")
		}
	}
	return b.String(), nil
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
DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
accel=${C2VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
	accel=tcg
	if [ "$(uname -m)" = "{{.UnameArch}}" ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		# /dev/kvm can exist and still hang guests: boot the kernel with KVM
		# for up to 5 seconds and use KVM only if it prints its banner. The
		# answer is kept for this host boot, shared with c2vm run.
		cache=${C2VM_CACHE:-${HOME:-/nonexistent}/.cache/c2vm}/kvm-probe-{{.Arch}}
		boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || :)
		if [ -n "$boot" ] && [ -r "$cache" ] && read -r id cached <"$cache" && [ "$id" = "$boot" ] &&
			{ [ "$cached" = kvm ] || [ "$cached" = tcg ]; }; then
			accel=$cached
		else
			if timeout 5 {{.Binary}} {{.MachineArgs}} -accel kvm -m 128 -nographic -no-reboot -nic none \
				-kernel "$DIR/{{.Kernel}}" -append "console={{.Console}} panic=-1 rdinit=/nonexistent" 2>/dev/null |
				grep -q "Linux version"; then
				accel=kvm
			fi
			if [ -n "$boot" ]; then
				{ mkdir -p "$(dirname -- "$cache")" && echo "$boot $accel" >"$cache"; } 2>/dev/null || :
			fi
		fi
	fi
fi
exec {{.Binary}} \
	{{.Args}}\
	"$@"
`))

// Write implements Target.
func (QEMUScript) Write(w io.Writer, vm VM) error {
	q, err := QEMUFor(vm.Arch)
	if err != nil {
		return err
	}
	args, err := scriptArgs(vm)
	if err != nil {
		return err
	}
	uname := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "riscv64": "riscv64"}[vm.Arch]
	return qemuTmpl.Execute(w, map[string]any{
		"Name": vm.Name, "Arch": vm.Arch, "UnameArch": uname, "Binary": q.Binary,
		"MachineArgs": strings.Join(q.Machine, " "), "MachineName": q.Machine[1],
		"Kernel": vm.Kernel, "Console": Console(vm.Arch), "Args": args,
	})
}
