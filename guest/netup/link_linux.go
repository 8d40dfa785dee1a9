package netup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Links are looked up through rtnetlink, not /sys/class/net: sysfs shows
// the network namespace of whoever mounted it, netlink the caller's, and
// the init may run before /sys is mounted.

// link returns the index and hardware address of the interface name.
func link(name string) (int, []byte, error) {
	if name == "" || len(name) >= unix.IFNAMSIZ {
		return 0, nil, fmt.Errorf("interface name %q: want 1 to %d bytes", name, unix.IFNAMSIZ-1)
	}
	body := attr(make([]byte, unix.SizeofIfInfomsg), unix.IFLA_IFNAME, append([]byte(name), 0))
	msgs, err := nlRequest(unix.RTM_GETLINK, 0, body)
	if err != nil {
		return 0, nil, err
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		index := int(int32(binary.NativeEndian.Uint32(m.Data[4:])))
		return index, attrValue(m.Data[unix.SizeofIfInfomsg:], unix.IFLA_ADDRESS), nil
	}
	return 0, nil, fmt.Errorf("link %s: no RTM_NEWLINK in the kernel's reply", name)
}

// Up sets the interface name up, as `ip link set NAME up` does.
func Up(name string) error {
	err := change(name, unix.RTM_NEWLINK, 0, func(index int) []byte {
		body := make([]byte, unix.SizeofIfInfomsg)
		binary.NativeEndian.PutUint32(body[4:], uint32(index))
		binary.NativeEndian.PutUint32(body[8:], unix.IFF_UP)  // flags
		binary.NativeEndian.PutUint32(body[12:], unix.IFF_UP) // change mask
		return body
	})
	if err != nil {
		return fmt.Errorf("set link %s up: %w", name, err)
	}
	return nil
}

// change sends the rtnetlink request that body builds for the index of
// the interface name.
func change(name string, typ, flags uint16, body func(index int) []byte) error {
	index, _, err := link(name)
	if err != nil {
		return err
	}
	_, err = nlRequest(typ, flags, body(index))
	return err
}

// WaitLink waits until the interface name exists (its driver, such as
// virtio_net, may have just been loaded and probe asynchronously), or ctx
// ends.
func WaitLink(ctx context.Context, name string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		_, _, err := link(name)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("wait for link %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for link %s: %w", name, ctx.Err())
		case <-tick.C:
		}
	}
}

// AddrAdd adds prefix (an address and its prefix length, like
// 10.0.2.15/24) to the interface name, as `ip addr replace` does: adding
// an address the interface already has is not an error.
func AddrAdd(name string, prefix netip.Prefix) error {
	err := errors.New("invalid prefix")
	if prefix.IsValid() {
		err = change(name, unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, func(index int) []byte {
			return addrMsg(index, prefix)
		})
	}
	if err != nil {
		return fmt.Errorf("add address %s to %s: %w", prefix, name, err)
	}
	return nil
}

// addrMsg is an ifaddrmsg and its attributes (rtnetlink(7)).
func addrMsg(index int, prefix netip.Prefix) []byte {
	ip := prefix.Addr().Unmap()
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0] = family(ip)
	body[1] = byte(prefix.Bits())
	binary.NativeEndian.PutUint32(body[4:], uint32(index))
	body = attr(body, unix.IFA_LOCAL, ip.AsSlice())
	body = attr(body, unix.IFA_ADDRESS, ip.AsSlice())
	if ip.Is4() && prefix.Bits() <= 30 {
		// The subnet's broadcast address, as `ip addr add ... brd +` sets:
		// without it, broadcasts to the subnet are not received.
		b := ip.As4()
		host := ^uint32(0) >> prefix.Bits()
		binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])|host)
		body = attr(body, unix.IFA_BROADCAST, b[:])
	}
	return body
}

// RouteAddDefault sets the default route through gw on the interface
// name, replacing any default route of the main table (`ip route replace
// default via GW dev NAME`). gw must be reachable: inside a prefix added
// to name.
func RouteAddDefault(name string, gw netip.Addr) error {
	err := errors.New("invalid gateway address")
	if gw.IsValid() {
		err = change(name, unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, func(index int) []byte {
			return routeMsg(index, gw.Unmap())
		})
	}
	if err != nil {
		return fmt.Errorf("add default route via %s dev %s: %w", gw, name, err)
	}
	return nil
}

// routeMsg is an rtmsg for a default route and its attributes.
func routeMsg(index int, gw netip.Addr) []byte {
	body := make([]byte, unix.SizeofRtMsg)
	body[0] = family(gw)
	body[4] = unix.RT_TABLE_MAIN
	body[5] = unix.RTPROT_BOOT
	body[6] = unix.RT_SCOPE_UNIVERSE
	body[7] = unix.RTN_UNICAST
	body = attr(body, unix.RTA_GATEWAY, gw.AsSlice())
	return attr(body, unix.RTA_OIF, u32(uint32(index)))
}

func family(ip netip.Addr) byte {
	if ip.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// Apply configures the lease on the interface name: its address and, when
// the server named a router, the default route.
func (l Lease) Apply(name string) error {
	if err := AddrAdd(name, l.Addr); err != nil {
		return err
	}
	if l.Router.IsValid() {
		return RouteAddDefault(name, l.Router)
	}
	return nil
}
