package netup

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DHCP asks a DHCPv4 server for a lease on the interface name, which must
// be up (see Up) and may have no address. hostname, when not empty, is
// sent as option 12 so that the server can register it. Requests are
// retransmitted with a doubling delay until a server acknowledges or ctx
// ends; give ctx a deadline. The lease is not applied: see Lease.Apply.
func DHCP(ctx context.Context, name, hostname string) (Lease, error) {
	l, err := dhcp(ctx, name, hostname)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp on %s: %w", name, err)
	}
	return l, nil
}

func dhcp(ctx context.Context, name, hostname string) (Lease, error) {
	index, mac, err := link(name)
	if err != nil {
		return Lease{}, err
	}
	if len(mac) == 0 || len(mac) > 16 {
		return Lease{}, fmt.Errorf("hardware address %x: not usable in a BOOTP message", mac)
	}
	p, err := listenPacket(index)
	if err != nil {
		return Lease{}, err
	}
	defer p.f.Close()
	// Cancelling ctx interrupts a receive at once (see packetConn.recv).
	stop := context.AfterFunc(ctx, func() { p.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	c := &client{t: p, mac: mac, hostname: hostname, delay: backoff}
	return c.lease(ctx)
}

// packetConn sends and receives IPv4 UDP packets on one interface through
// an AF_PACKET socket (packet(7)), which works before the interface has an
// address and sees a server's unicast reply to the address it offers.
type packetConn struct {
	f  *os.File
	rc syscall.RawConn
	to unix.SockaddrLinklayer
}

var _ transport = (*packetConn)(nil)

// ethIP is ETH_P_IP in network byte order, as packet(7) wants it.
var ethIP = binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, unix.ETH_P_IP))

func listenPacket(index int) (*packetConn, error) {
	// SOCK_DGRAM: the kernel adds and strips the Ethernet header.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(ethIP))
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: ethIP, Ifindex: index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind packet socket to interface %d: %w", index, err)
	}
	// A non-blocking descriptor joins the runtime's poller, so reads
	// honour deadlines.
	f := os.NewFile(uintptr(fd), "packet")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	to := unix.SockaddrLinklayer{Protocol: ethIP, Ifindex: index, Halen: 6}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	return &packetConn{f: f, rc: rc, to: to}, nil
}

// send broadcasts payload from 0.0.0.0:68 to 255.255.255.255:67 (RFC 2131
// §4.1: a client without an address uses these).
func (p *packetConn) send(payload []byte) error {
	pkt := encodeUDP4([4]byte{}, [4]byte{255, 255, 255, 255}, clientPort, serverPort, payload)
	var serr error
	err := p.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), pkt, 0, &p.to)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("send dhcp packet: %w", err)
	}
	return nil
}

// recv returns the next UDP payload for port 68.
func (p *packetConn) recv(ctx context.Context, deadline time.Time) ([]byte, error) {
	if err := p.f.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	// After the deadline is set: a cancellation from now on moves it to
	// the past (DHCP's AfterFunc), one before it is seen here.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	buf := make([]byte, 1<<16)
	for {
		var n int
		var rerr error
		err := p.rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return nil, err
		}
		if port, payload, err := decodeUDP4(buf[:n]); err == nil && port == clientPort {
			return payload, nil
		}
	}
}
