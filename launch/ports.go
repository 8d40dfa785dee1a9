package launch

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/c2vm/c2vm/bootcfg"
	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/vmdir"
)

// ErrPortInUse is wrapped by the error for a published host port that
// something else already listens on.
var ErrPortInUse = errors.New("host port in use")

// forwards are the ports this run publishes: the converted ones (unless
// NoPublish), every EXPOSEd port with PublishAll, then Publish, each
// replacing a forward of its guest port (bootcfg.Forwards).
func forwards(o Options, m *vmdir.Manifest) ([]plan.Forward, error) {
	base := m.Forwards
	if o.NoPublish {
		base = nil
	}
	var exposed []plan.Port
	if o.PublishAll {
		exposed = m.Exposed
	}
	return bootcfg.Forwards(base, exposed, o.Publish)
}

// checkHostPorts listens on each forward's host address and port and
// closes it at once: QEMU would otherwise fail later with a message about
// a "host forwarding rule", or, for a port taken between this check and
// QEMU's start, the same; here the port is named.
func checkHostPorts(fs []plan.Forward) error {
	for _, f := range fs {
		addr := net.JoinHostPort(f.HostIP, strconv.Itoa(int(f.HostPort)))
		var err error
		if f.Proto == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", addr); err == nil {
				err = c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				err = l.Close()
			}
		}
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			return fmt.Errorf("%w: %s/%s (publish it elsewhere with -p HOST:%d): %w", ErrPortInUse, addr, f.Proto, f.GuestPort, err)
		case err != nil:
			return fmt.Errorf("cannot publish host port %s/%s: %w", addr, f.Proto, err)
		}
	}
	return nil
}
