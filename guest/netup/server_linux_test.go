package netup

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// testServer is the smallest DHCP server the client needs: one address to
// offer, replies broadcast or unicast through the kernel's UDP stack,
// which checks the client's IP and UDP checksums on the way in.
type testServer struct {
	addr, offer [4]byte
	to          net.Addr // where replies go; nil: broadcast
	conn        net.PacketConn
	mu          sync.Mutex
	seen        []string
}

// listen opens port 67 on dev; call it inside the server's namespace.
func (s *testServer) listen(dev string) error {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
			if err == nil {
				err = unix.BindToDevice(int(fd), dev)
			}
		})
		return err
	}}
	var err error
	s.conn, err = lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:67")
	return err
}

func (s *testServer) close() { s.conn.Close() }

func (s *testServer) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func (s *testServer) serve() {
	buf := make([]byte, 1500)
	to := s.to
	if to == nil {
		to = &net.UDPAddr{IP: net.IPv4bcast, Port: clientPort}
	}
	for {
		n, _, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		req, err := unmarshal(buf[:n])
		if err != nil || req.op != opRequest {
			continue
		}
		if reply := s.answer(req); reply != nil {
			s.conn.WriteTo(reply.marshal(), to)
		}
	}
}

// answer returns the reply to req: an offer, an ack for our offer, or a
// nak for anything else requested.
func (s *testServer) answer(req *message) *message {
	host := string(req.opts[optHostname])
	typ := byte(msgOffer)
	switch req.opts.msgType() {
	case msgDiscover:
		s.record("DISCOVER " + host)
	case msgRequest:
		want := netip.AddrFrom4(s.offer)
		got := req.opts.addr(optRequestedIP)
		s.record("REQUEST " + host + " " + got.String())
		typ = msgAck
		if got != want || req.opts.addr(optServerID) != netip.AddrFrom4(s.addr) {
			typ = msgNak
		}
	default:
		return nil
	}
	return &message{op: opReply, xid: req.xid, yiaddr: s.offer, siaddr: s.addr, chaddr: req.chaddr, opts: options{
		optMessageType: {typ},
		optServerID:    s.addr[:],
		optSubnetMask:  {255, 255, 255, 0},
		optRouter:      s.addr[:],
		optDNS:         {192, 0, 2, 53, 192, 0, 2, 54},
		optDomain:      []byte("example.test"),
		optLeaseTime:   {0, 0, 0x0e, 0x10},
	}}
}

func (s *testServer) record(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, line)
}
