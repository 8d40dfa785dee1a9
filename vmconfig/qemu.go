package vmconfig

import (
	"fmt"
	"io"
	"strings"
	"text/template"

	"github.com/c2vm/c2vm/arch"
)

// QEMUArgs is the one place that builds QEMU's command line, for qemu.sh
// and `c2vm run` alike: direct kernel boot, the root disk as a read-only
// virtio-blk drive and the data disks as writable ones after it, a
// virtio-net NIC on user-mode networking with a hostfwd per forward, the
// serial console on stdio, no reboot (the guest's poweroff or a panic
// ends QEMU). accel is "kvm" or "tcg"; dir prefixes the
// artifact names; appendArgs are extra kernel arguments.
func QEMUArgs(vm VM, accel, dir, appendArgs string) ([]string, error) {
	return qemuArgs(vm, accel, fmt.Sprint(vm.memory()), fmt.Sprint(vm.cpus()), dir, appendArgs)
}

// qemuArgs takes every variable part as a string so that qemu.sh can pass
// shell expressions (see shellWord).
func qemuArgs(vm VM, accel, memory, cpus, dir, appendArgs string) ([]string, error) {
	a, err := arch.VM(vm.Arch)
	if err != nil {
		return nil, err
	}
	nd, err := netdev(netdevID, vm.Forwards)
	if err != nil {
		return nil, err
	}
	disks, readOnly, err := vm.disks()
	if err != nil {
		return nil, err
	}
	args := append(machineArgs(a, accel),
		"-accel", accel,
		"-m", memory,
		"-smp", cpus,
		"-nographic", "-no-reboot",
		"-netdev", nd,
		"-device", netDevice+",netdev="+netdevID,
		"-kernel", dir+vm.Kernel,
		"-initrd", dir+vm.Initrd,
	)
	// The root disk and its hash tree read-only, then the data disks,
	// writable: virtio-blk devices take PCI slots, and so vda, vdb...,
	// in command-line order.
	for i, d := range disks {
		drive := "file=" + dir + d + ",if=virtio,format=raw"
		if i < readOnly {
			drive += ",readonly=on"
		}
		args = append(args, "-drive", drive)
	}
	return append(args, "-append", KernelCmdline(a.Console, vm.Cmdline, appendArgs)), nil
}

// machineArgs is -M and -cpu for accel: under TCG the arch's TCGCPU; in
// a script, whose accelerator is known when it runs, its $cpu (accelTmpl).
func machineArgs(a arch.Arch, accel string) []string {
	args := append([]string{}, a.QEMU.Args...)
	cpu := map[string]string{"tcg": a.QEMU.TCGCPU, phAccel: phCPU}[accel]
	if a.QEMU.TCGCPU == "" || cpu == "" {
		return args
	}
	for i := range args[:len(args)-1] {
		if args[i] == "-cpu" {
			args[i+1] = cpu
		}
	}
	return args
}

// The KVM probe: /dev/kvm can exist and still hang guests (this project's
// build machine), so KVM is used only when the VM's own kernel, booted
// under KVM without an initramfs, prints its banner within ProbeSeconds.
// c2vm run (package launch) and qemu.sh run this same command and share
// the answer, cached for the host's boot in the cache directory's
// ProbeCacheFile(arch) as "<boot_id> kvm|tcg".
const (
	ProbeSeconds = 5
	ProbeBanner  = "Linux version"
)

// ProbeArgs is the probe's QEMU command line (without the binary).
func ProbeArgs(vm VM, dir string) ([]string, error) {
	a, err := arch.VM(vm.Arch)
	if err != nil {
		return nil, err
	}
	args := append([]string{}, a.QEMU.Args...)
	return append(args, "-accel", "kvm", "-m", "128", "-nographic", "-no-reboot", "-nic", "none",
		"-kernel", dir+vm.Kernel, "-append", KernelCmdline(a.Console, "rdinit=/nonexistent")), nil
}

// ProbeCacheFile names the probe's answer in the cache directory.
func ProbeCacheFile(goarch string) string { return "kvm-probe-" + goarch }

// KernelCmdline is the command line every QEMU and Xen boot of a
// converted VM starts with: its console, and a panic (the init failing)
// stops the VM at once instead of hanging it; extra follows.
func KernelCmdline(console string, extra ...string) string {
	return joinArgs(append([]string{"console=" + console, "panic=-1"}, extra...)...)
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
	phCPU    = "\x00cpu\x00"
	phMemory = "\x00memory\x00"
	phCPUs   = "\x00cpus\x00"
	phDir    = "\x00dir\x00"
	phAppend = "\x00append\x00"
	phAgent  = "\x00agent\x00"
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
		phCPU, "$cpu",
		phMemory, fmt.Sprintf("${C2VM_MEMORY:-%d}", memory),
		phCPUs, fmt.Sprintf("${C2VM_CPUS:-%d}", cpus),
		phAgent, "${C2VM_AGENT_SOCKET:-$DIR/"+AgentSocket+"}",
		phDir, "$DIR/",
		" "+phAppend, "${C2VM_APPEND:+ $C2VM_APPEND}",
		phAppend, "${C2VM_APPEND:-}",
	).Replace(s)
	return `"` + s + `"`
}

// scriptArgs is QEMU's command line as sh words, one option per line.
func scriptArgs(vm VM) (string, error) {
	args, err := qemuArgs(vm, phAccel, phMemory, phCPUs, phDir, phAppend)
	if err != nil {
		return "", err
	}
	agent, err := AgentArgs(vm.Arch, phAgent)
	if err != nil {
		return "", err
	}
	return shellWords(append(args, agent...), vm), nil
}

func shellWords(args []string, vm VM) string {
	var b strings.Builder
	for i, a := range args {
		b.WriteString(shellWord(a, vm.memory(), vm.cpus()))
		if i+1 < len(args) && strings.HasPrefix(args[i+1], "-") {
			b.WriteString(" \\\n\t")
		} else {
			b.WriteString(" ")
		}
	}
	return b.String()
}

// QEMUScript writes qemu.sh.
type QEMUScript struct{}

// Name implements Target.
func (QEMUScript) Name() string { return "qemu.sh" }

// accelTmpl is the KVM probe in shell, the one both qemu.sh and
// qemu-disk.sh run (launch runs the same command in Go): the cached answer
// for this host boot, else the probe boot of ProbeArgs, whose answer is
// cached. ProbeIf, when set, is a test the probe needs first: without
// it, nothing is probed or cached.
var accelTmpl = `{{define "accel"}}accel=${C2VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
	accel=tcg
	if [ "$(uname -m)" = "{{.Uname}}" ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		# /dev/kvm can exist and still hang guests: boot the kernel with KVM
		# for up to 5 seconds and use KVM only if it prints its banner. The
		# answer is kept for this host boot, shared with c2vm run.
		cache=${C2VM_CACHE:-${HOME:-/nonexistent}/.cache/c2vm}/{{.ProbeCache}}
		boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || :)
		if [ -n "$boot" ] && [ -r "$cache" ] && read -r id cached <"$cache" && [ "$id" = "$boot" ] &&
			{ [ "$cached" = kvm ] || [ "$cached" = tcg ]; }; then
			accel=$cached
		{{- if .ProbeIf}}
		elif {{.ProbeIf}}; then
		{{- else}}
		else
		{{- end}}
			if timeout {{.ProbeSeconds}} {{.Binary}} {{.Probe}} 2>/dev/null |
				grep -q "{{.ProbeBanner}}"; then
				accel=kvm
			fi
			if [ -n "$boot" ]; then
				{ mkdir -p "$(dirname -- "$cache")" && echo "$boot $accel" >"$cache"; } 2>/dev/null || :
			fi
		fi
	fi
fi
{{- if .TCGCPU}}
cpu={{.CPU}}
if [ "$accel" = tcg ]; then
	cpu={{.TCGCPU}} # the same CPU, faster to emulate
fi
{{- end}}
{{end}}`

// withAccel parses a script's template after accelTmpl.
func withAccel(name, text string) *template.Template {
	return template.Must(template.Must(template.New(name).Parse(accelTmpl)).Parse(text))
}

// probeData is what accelTmpl needs to probe vm.
func probeData(vm VM, a arch.Arch) (map[string]any, error) {
	probe, err := ProbeArgs(vm, phDir)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"Uname": a.Uname, "Binary": a.QEMU.Binary, "ProbeSeconds": ProbeSeconds, "ProbeBanner": ProbeBanner,
		"ProbeCache": ProbeCacheFile(vm.Arch), "CPU": a.QEMU.CPU, "TCGCPU": a.QEMU.TCGCPU,
		"Probe": strings.TrimSpace(strings.ReplaceAll(shellWords(probe, vm), " \\\n\t", " ")),
	}, nil
}

var qemuTmpl = withAccel("qemu.sh", `#!/bin/sh
# Boots {{.Name}} ({{.Arch}}) with QEMU: the container's output on this
# terminal, the VM powers off when it exits; its last console line is
# C2VM_EXIT_STATUS=<n>. Written by c2vm; runs from any directory.
#   C2VM_ACCEL=auto|kvm|tcg  accelerator (auto: KVM only when it is this
#                            host's arch and a probe VM really runs)
#   C2VM_MEMORY, C2VM_CPUS   override memory (MiB) and CPUs
#   C2VM_APPEND              extra kernel arguments (e.g. c2vm.debug=1)
#   C2VM_AGENT_SOCKET        the exec agent's unix socket, no commas (default
#                            $DIR/agent.sock): c2vm exec --socket PATH -- CMD
#   extra arguments are passed to QEMU.
# Network: QEMU user mode (the guest is 10.0.2.15, the host 10.0.2.2);
# published ports (IP:HOST:GUEST/proto, as docker -p): {{if .Forwards}}{{.Forwards}}{{else}}none{{end}}.
{{- if .DataDisks}}
# Data disks, written by the VM (keep them across upgrades): {{.DataDisks}}.
{{- end}}
set -eu
DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
{{template "accel" .}}exec {{.Binary}} \
	{{.Args}}\
	"$@"
`)

// Write implements Target.
func (QEMUScript) Write(w io.Writer, vm VM) error {
	a, err := arch.VM(vm.Arch)
	if err != nil {
		return err
	}
	args, err := scriptArgs(vm)
	if err != nil {
		return err
	}
	d, err := probeData(vm, a)
	if err != nil {
		return err
	}
	d["Name"], d["Arch"], d["Args"] = vm.Name, vm.Arch, args
	d["Forwards"], d["DataDisks"] = forwardList(vm.Forwards), strings.Join(vm.DataDisks, " ")
	return qemuTmpl.Execute(w, d)
}
