package launch

import "github.com/c2vm/c2vm/vmconfig"

// AgentArgs are the QEMU options that give a VM launched here the exec
// agent's channel, QEMU listening on the unix socket sock (c2vm run -d;
// `c2vm exec` dials it with package launch/agent). goarch is the VM's.
func AgentArgs(sock, goarch string) ([]string, error) {
	return vmconfig.AgentArgs(goarch, sock)
}
