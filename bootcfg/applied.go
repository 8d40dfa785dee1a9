package bootcfg

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// NotApplied names the parts of spec the guest init does not apply, so
// that convert can say so once instead of dropping them silently. The
// init applies: process args, env, cwd, user and groups, the capability
// bounding set (from which exec(2) derives the others for root), rlimits,
// noNewPrivileges, hostname, mounts, maskedPaths and readonlyPaths. The VM
// itself is the isolation boundary: it has no namespaces to join, and one
// container owns all of it.
func NotApplied(s *specs.Spec) []string {
	var out []string
	add := func(set bool, what string) {
		if set {
			out = append(out, what)
		}
	}
	if p := s.Process; p != nil {
		add(p.Terminal, "process.terminal (the console is the VM's serial line)")
		add(p.ApparmorProfile != "", "process.apparmorProfile")
		add(p.SelinuxLabel != "", "process.selinuxLabel")
		add(p.OOMScoreAdj != nil, "process.oomScoreAdj")
		add(p.User.Umask != nil, "process.user.umask")
		if c := p.Capabilities; c != nil {
			add(len(c.Ambient) > 0, "process.capabilities.ambient")
			add(len(c.Inheritable) > 0, "process.capabilities.inheritable")
		}
	}
	add(s.Root != nil && s.Root.Readonly, "root.readonly (the root is a writable overlay on the read-only image)")
	add(s.Hooks != nil, "hooks")
	add(s.Domainname != "", "domainname")
	if l := s.Linux; l != nil {
		add(l.Seccomp != nil, "linux.seccomp")
		add(l.Resources != nil, "linux.resources (size the VM with --memory and --cpus)")
		add(len(l.Sysctl) > 0, "linux.sysctl")
		add(len(l.Devices) > 0, "linux.devices (the VM's devtmpfs has its real devices)")
		add(len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0, "linux.uidMappings/gidMappings")
		add(l.CgroupsPath != "", "linux.cgroupsPath")
		add(l.MountLabel != "", "linux.mountLabel")
		add(l.Personality != nil, "linux.personality")
		add(l.IntelRdt != nil, "linux.intelRdt")
	}
	return out
}
