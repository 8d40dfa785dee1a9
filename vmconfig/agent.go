package vmconfig

import (
	"strings"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/bootcfg/wire"
)

// AgentSocket is where qemu.sh puts the exec agent's socket, in the VM's
// directory, unless C2VM_AGENT_SOCKET names another path.
const AgentSocket = "agent.sock"

// AgentArgs are QEMU's options for the exec agent's channel: a
// virtio-serial controller on PCI (q35 and virt alike) with the port
// wire.PortName, its chardev a unix socket QEMU listens on at sock
// (wait=off: the VM boots whether or not a client is there). `c2vm exec
// --socket SOCK` connects to it.
func AgentArgs(goarch, sock string) ([]string, error) {
	if _, err := arch.VM(goarch); err != nil {
		return nil, err
	}
	return []string{
		"-device", "virtio-serial-pci,id=c2vm-serial",
		// QEMU reads a doubled comma in an option value as one.
		"-chardev", "socket,id=c2vm-agent,path=" + strings.ReplaceAll(sock, ",", ",,") + ",server=on,wait=off",
		"-device", "virtserialport,bus=c2vm-serial.0,chardev=c2vm-agent,name=" + wire.PortName,
	}, nil
}

// channel is libvirt's <channel>.
type channel struct {
	Type   string `xml:"type,attr"`
	Source struct {
		Mode string `xml:"mode,attr"`
	} `xml:"source"`
	Target struct {
		Type string `xml:"type,attr"`
		Name string `xml:"name,attr"`
	} `xml:"target"`
}

// agentChannel is the exec agent's channel in libvirt.xml: a virtio port
// whose unix socket path libvirt makes (as for qemu-guest-agent), under
// its channel directory: /var/lib/libvirt/qemu/channel/target/domain-ID-NAME/
// org.c2vm.agent.0 for qemu:///system; `virsh dumpxml NAME` shows it.
func agentChannel() *channel {
	c := &channel{Type: "unix"}
	c.Source.Mode = "bind"
	c.Target.Type, c.Target.Name = "virtio", wire.PortName
	return c
}
