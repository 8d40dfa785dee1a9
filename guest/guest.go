// Package guest is the VM's PID 1: it reads the boot plan (boot.json,
// package bootcfg/plan) from the initramfs and executes its steps in order
// — mounts, modules, finding the root disk, the overlay, binfmt_misc, the
// switch to the container's root, masked paths — up to the Run step,
// which starts the container process and stays PID 1 until it exits. Then
// it reports the status on the console (plan.StatusLine) and powers the
// VM off. The order and every default live in the plan, built on the
// host; this package only knows how to run each kind of step.
//
// With c2vm.debug=1 on the kernel command line each step is printed as it
// runs; a failing step is named in the plan.ErrorLine report.
package guest

import (
	"strings"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// lookPath resolves a command as Docker does: a name without a slash is
// searched in the process's PATH (from its env; plan.DefaultPath when it
// has none), inside the container's root.
func lookPath(file string, env []string, exists func(string) (isExec bool, ok bool)) (string, bool) {
	if strings.Contains(file, "/") {
		return file, true
	}
	path := plan.DefaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		if x, ok := exists(p); ok && x {
			return p, true
		}
	}
	return file, false
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
