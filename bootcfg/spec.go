// Package bootcfg generates what the guest runs: the OCI runtime spec
// (config.json) from the image config and the user's overrides, and the
// boot plan (boot.json, types in bootcfg/plan) around it.
//
//	spec, err := bootcfg.Spec(img.Config, tree.FS(), bootcfg.Overrides{User: "app"}, nil)
//	p, err := bootcfg.Plan(spec, bootcfg.PlanOptions{FSType: "squashfs"})
package bootcfg

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/c2vm/c2vm/bootcfg/passwd"
	"github.com/c2vm/c2vm/bootcfg/plan"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Overrides change the image config as `docker run` flags do; the zero
// value changes nothing.
type Overrides struct {
	// Entrypoint replaces the image's when EntrypointSet (empty: cleared,
	// as `--entrypoint ""`); setting it also clears the image's Cmd.
	Entrypoint    []string
	EntrypointSet bool
	// Cmd replaces the image's Cmd when CmdSet.
	Cmd      []string
	CmdSet   bool
	Env      []string // K=V, replacing the image's value of K
	User     string
	Workdir  string
	Hostname string
}

// ErrNoCommand is returned when neither the image nor the overrides give a
// command to run.
var ErrNoCommand = errors.New("no command: the image has no Entrypoint or Cmd; give --cmd")

// DefaultHostname is the VM's hostname when neither the user nor the
// image config names one.
const DefaultHostname = "c2vm"

// Spec builds the OCI runtime spec for the image config cfg with the
// overrides o, resolving the user in rootfs (read through fs.FS, paths
// without a leading slash).
func Spec(cfg ocispec.Image, rootfs fs.FS, o Overrides, annotations map[string]string) (*specs.Spec, error) {
	args := Args(cfg.Config, o)
	if len(args) == 0 {
		return nil, ErrNoCommand
	}
	userSpec := cfg.Config.User
	if o.User != "" {
		userSpec = o.User
	}
	u, err := passwd.ResolveUser(userSpec, rootfs)
	if err != nil {
		return nil, err
	}
	cwd := cfg.Config.WorkingDir
	if o.Workdir != "" {
		cwd = o.Workdir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !strings.HasPrefix(cwd, "/") {
		return nil, fmt.Errorf("working directory %q is not absolute", cwd)
	}
	hostname := DefaultHostname
	if o.Hostname != "" {
		hostname = o.Hostname
	}
	s := &specs.Spec{
		Version:  specs.Version,
		Hostname: hostname,
		Root:     &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args: args,
			Env:  Env(cfg.Config.Env, o.Env, u.Home),
			Cwd:  cwd,
			User: specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGIDs, Username: u.Name},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  defaultCaps(),
				Effective: defaultCaps(),
				Permitted: defaultCaps(),
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: false,
		},
		Mounts:      defaultMounts(),
		Annotations: imageAnnotations(cfg, annotations),
		Linux: &specs.Linux{
			MaskedPaths:   maskedPaths(),
			ReadonlyPaths: readonlyPaths(),
		},
	}
	return s, nil
}

// Args applies Docker's override rules: --entrypoint replaces the
// entrypoint and drops the image's Cmd; --cmd replaces Cmd.
func Args(c ocispec.ImageConfig, o Overrides) []string {
	entry, cmd := c.Entrypoint, c.Cmd
	if o.EntrypointSet {
		entry, cmd = o.Entrypoint, nil
	}
	if o.CmdSet {
		cmd = o.Cmd
	}
	return append(append([]string{}, entry...), cmd...)
}

// Env merges the image's environment with overrides (an override replaces
// the same key in place), defaults PATH as Docker does and HOME from the
// user's passwd entry.
func Env(image, overrides []string, home string) []string {
	var valid []string
	for _, kv := range overrides {
		if strings.Contains(kv, "=") {
			valid = append(valid, kv)
		}
	}
	out := plan.MergeEnv(nil, append(append([]string{}, image...), valid...))
	has := func(k string) bool {
		for _, kv := range out {
			if strings.HasPrefix(kv, k+"=") {
				return true
			}
		}
		return false
	}
	// Docker's PATH for images that set none (moby oci/defaults.go).
	if !has("PATH") {
		out = append(out, "PATH="+plan.DefaultPath)
	}
	if !has("HOME") {
		out = append(out, "HOME="+home)
	}
	return out
}

func imageAnnotations(cfg ocispec.Image, extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range cfg.Config.Labels {
		if strings.HasPrefix(k, "org.opencontainers.image.") {
			out[k] = v
		}
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}
