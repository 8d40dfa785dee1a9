// Package guest is the VM's PID 1: it executes a boot plan (boot.json,
// bootcfg/plan) — load modules, find and mount the root disk under a tmpfs
// overlay, register binfmt_misc entries, switch root — then runs the
// container process, stays PID 1 reaping zombies and forwarding SIGTERM
// and SIGINT, and finally reports the status and powers the VM off.
//
// Console protocol, one line each, machine-readable:
//
//	C2VM_EXIT_STATUS=<n>       last line: the container's exit status (Docker's
//	                           codes: 126 not executable, 127 not found, 128+N signal N)
//	C2VM_INIT_ERROR=<message>  the init failed before the process ran; it is
//	                           followed by C2VM_EXIT_STATUS=125
//
// Kernel command line overrides: c2vm.cmd=<base64 of a JSON array> replaces
// the process args, c2vm.env=K=V (repeatable; or base64 of K=V) adds to the
// environment, c2vm.debug=1 logs every step.
package guest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Exit statuses the init reports for its own failures, as Docker does.
const (
	StatusInitFailed    = 125
	StatusNotExecutable = 126
	StatusNotFound      = 127
)

// StatusLine and ErrorLine are the console protocol's prefixes.
const (
	StatusLine = "C2VM_EXIT_STATUS="
	ErrorLine  = "C2VM_INIT_ERROR="
)

// Cmdline holds the c2vm.* overrides from the kernel command line.
type Cmdline struct {
	Cmd   []string
	Env   []string
	Debug bool
}

// ParseCmdline reads /proc/cmdline's c2vm.* parameters. Malformed values
// are errors naming the parameter.
func ParseCmdline(s string) (Cmdline, error) {
	var c Cmdline
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "c2vm.cmd":
			b, err := decodeBase64(v)
			if err != nil {
				return c, fmt.Errorf("c2vm.cmd: not base64: %w", err)
			}
			if err := json.Unmarshal(b, &c.Cmd); err != nil {
				return c, fmt.Errorf("c2vm.cmd: not a JSON array of strings: %w", err)
			}
		case "c2vm.env":
			if !strings.Contains(v, "=") {
				b, err := decodeBase64(v)
				if err != nil || !strings.Contains(string(b), "=") {
					return c, fmt.Errorf("c2vm.env=%s: want K=V or base64 of K=V", v)
				}
				v = string(b)
			}
			c.Env = append(c.Env, v)
		case "c2vm.debug":
			c.Debug = v == "1" || v == "true" || v == ""
		}
	}
	return c, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%q", s)
}

// MergeEnv adds overrides to env, replacing same keys.
func MergeEnv(env, overrides []string) []string {
	out := append([]string{}, env...)
	for _, kv := range overrides {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, e := range out {
			if strings.HasPrefix(e, k+"=") {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// LookPath resolves a command as Docker does: a name without a slash is
// searched in the process's PATH (from its env), inside root.
func LookPath(file string, env []string, exists func(string) (isExec bool, ok bool)) (string, bool) {
	if strings.Contains(file, "/") {
		return file, true
	}
	path := DefaultPath
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

// DefaultPath is the PATH searched when the process's env has none, as
// Docker does (runc's default).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// baseMounts are what every container gets even when its spec omits them
// (containerd's defaults, oci/mounts.go). /dev itself is the VM's devtmpfs.
var baseMounts = []specs.Mount{
	{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
	{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
	{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
	{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
}

// ContainerMounts returns the mounts to make inside the new root, in
// order: the spec's own, minus /dev (devtmpfs is moved there instead),
// after any of baseMounts the spec lacks, parents before children.
func ContainerMounts(spec []specs.Mount) []specs.Mount {
	have := map[string]bool{}
	for _, m := range spec {
		have[m.Destination] = true
	}
	var out []specs.Mount
	for _, m := range baseMounts {
		if !have[m.Destination] {
			out = append(out, m)
		}
	}
	for _, m := range spec {
		if m.Destination != "/dev" {
			out = append(out, m)
		}
	}
	// Stable sort by depth keeps the spec's order among equals and puts
	// /sys before /sys/fs/cgroup whatever order the spec has.
	depth := func(d string) int { return strings.Count(strings.TrimSuffix(d, "/"), "/") }
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && depth(out[j].Destination) < depth(out[j-1].Destination); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
