package plan

func init() { register(func() Action { return &Agent{} }) }

// Agent serves `c2vm exec` on the virtio-serial port named Port, when the
// VM has one (qemu.sh, libvirt.xml and c2vm run -d add it; without it the
// step does nothing and costs no time). It comes right before Run, in the
// container's root: it opens the port and removes its node from the
// container's /dev (the port takes one opener, so the container cannot
// open it either), and serves sessions once the Run step has started the
// container's process, each exec'd process entering the container as that
// process did (user, groups, env, cwd, capabilities, rlimits,
// no_new_privs; exec's -u, -e, -w override). The init stays PID 1 and
// reaps them. With c2vm.idle=D on the kernel command line, it presses the
// power button (see Run) once no session has been open for D. The exec
// protocol is package bootcfg/wire.
type Agent struct {
	Port string `json:"port"`
}

func (*Agent) Op() string { return "agent" }
func (a *Agent) String() string {
	return "serve c2vm exec on the virtio-serial port " + a.Port + " if the VM has it"
}
