package launch

import "github.com/c2vm/c2vm/arch"

// agentDevArgs are QEMU's arguments for the guest agent's virtio-serial
// port, a unix socket server at sock. Replaced by agentdev.go's.
func agentDevArgs(sock, vmArch string) []string {
	_, _ = arch.VM(vmArch)
	return []string{"-device", "virtio-serial-pci,id=c2vm-vser",
		"-chardev", "socket,id=c2vm-agent,path=" + sock + ",server=on,wait=off",
		"-device", "virtserialport,bus=c2vm-vser.0,chardev=c2vm-agent,name=org.c2vm.agent.0"}
}
