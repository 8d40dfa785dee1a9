package netup

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testMAC = []byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

// bootp builds a BOOTREPLY by hand, field by field as RFC 2131 §2 lays it
// out, independently of marshal.
func bootp(xid uint32, yiaddr [4]byte, sname, file, opts []byte) []byte {
	b := make([]byte, 240)
	b[0], b[1], b[2] = opReply, 1, 6
	binary.BigEndian.PutUint32(b[4:], xid)
	copy(b[16:], yiaddr[:])
	copy(b[28:], testMAC)
	copy(b[44:108], sname)
	copy(b[108:236], file)
	copy(b[236:], []byte{0x63, 0x82, 0x53, 0x63})
	return append(b, opts...)
}

func TestMarshal(t *testing.T) {
	m := &message{op: opRequest, xid: 0xdeadbeef, secs: 3, flags: flagBroadcast, chaddr: testMAC, opts: options{
		optHostname:     []byte("vm"),
		optMessageType:  {msgDiscover},
		optParamRequest: {1, 3},
	}}
	b := m.marshal()
	for _, c := range []struct {
		name string
		at   int
		want []byte
	}{
		{"op htype hlen hops", 0, []byte{1, 1, 6, 0}},
		{"xid", 4, []byte{0xde, 0xad, 0xbe, 0xef}},
		{"secs flags", 8, []byte{0, 3, 0x80, 0}},
		{"chaddr", 28, append(bytes.Clone(testMAC), make([]byte, 10)...)},
		{"cookie", 236, []byte{99, 130, 83, 99}},
		// Message type first, then by code, then end; padded to 300.
		{"options", 240, []byte{53, 1, 1, 12, 2, 'v', 'm', 55, 2, 1, 3, 255, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := b[c.at : c.at+len(c.want)]; !bytes.Equal(got, c.want) {
				t.Errorf("bytes at %d = % x, want % x", c.at, got, c.want)
			}
		})
	}
	if len(b) != minLen {
		t.Errorf("length %d, want the BOOTP minimum %d", len(b), minLen)
	}
	back, err := unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, m)
	}
}

func TestMarshalSplitsLongOptions(t *testing.T) {
	long := bytes.Repeat([]byte{'a'}, 300)
	b := (&message{opts: options{optDomain: long}}).marshal()
	// RFC 3396: 255 bytes in the first instance, the rest in a second.
	if b[240] != optDomain || b[241] != 255 || b[240+2+255] != optDomain || b[240+2+255+1] != 45 {
		t.Fatalf("long option not split at 255: % x", b[240:250])
	}
	m, err := unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.opts[optDomain], long) {
		t.Errorf("split option not joined back: %d bytes", len(m.opts[optDomain]))
	}
}

func TestUnmarshal(t *testing.T) {
	yi := [4]byte{192, 0, 2, 15}
	for _, c := range []struct {
		name    string
		in      []byte
		want    options
		wantErr string
	}{
		{"options and pads", bootp(7, yi, nil, nil, []byte{0, 53, 1, 2, 0, 0, 54, 4, 192, 0, 2, 1, 255, 1, 2, 3}),
			options{53: {2}, 54: {192, 0, 2, 1}}, ""},
		{"no end option", bootp(7, yi, nil, nil, []byte{53, 1, 5}), options{53: {5}}, ""},
		{"empty option", bootp(7, yi, nil, nil, []byte{80, 0, 255}), options{80: {}}, ""},
		{"repeated option joined", bootp(7, yi, nil, nil, []byte{15, 2, 'a', 'b', 15, 1, 'c', 255}),
			options{15: []byte("abc")}, ""},
		{"overload file and sname", bootp(7, yi, []byte{12, 1, 's', 255}, []byte{15, 1, 'f', 255},
			[]byte{52, 1, 3, 53, 1, 5, 255}), options{52: {3}, 53: {5}, 15: []byte("f"), 12: []byte("s")}, ""},
		{"file not read without overload", bootp(7, yi, nil, []byte{15, 1, 'f', 255}, []byte{53, 1, 5, 255}),
			options{53: {5}}, ""},
		{"short", make([]byte, 239), nil, "shorter than the BOOTP header"},
		{"bad cookie", append(make([]byte, 240), 255), nil, "magic cookie at offset 236"},
		{"length past the end", bootp(7, yi, nil, nil, []byte{53, 1, 5, 6, 8, 1, 2}), nil,
			"option 6 at offset 243: length 8 runs past the end"},
		{"no length byte", bootp(7, yi, nil, nil, []byte{53, 1, 5, 6}), nil, "option 6 at offset 243: no length byte"},
		{"bad overloaded file", bootp(7, yi, nil, []byte{15, 200}, []byte{52, 1, 1, 255}), nil,
			"overloaded file field: dhcp option 15 at offset 108"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := unmarshal(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.opts, c.want) {
				t.Errorf("options %v, want %v", m.opts, c.want)
			}
			if m.op != opReply || m.xid != 7 || m.yiaddr != yi || !bytes.Equal(m.chaddr, testMAC) {
				t.Errorf("header %+v", m)
			}
		})
	}
}

func TestLeaseFrom(t *testing.T) {
	ip := [4]byte{192, 0, 2, 15}
	full := options{
		optSubnetMask: {255, 255, 255, 0},
		optRouter:     {192, 0, 2, 1, 192, 0, 2, 254},
		optDNS:        {192, 0, 2, 53, 8, 8, 8, 8},
		optHostname:   []byte("guest"),
		optDomain:     []byte("example.test\x00"),
		optLeaseTime:  {0, 0, 0x0e, 0x10},
		optServerID:   {192, 0, 2, 1},
	}
	for _, c := range []struct {
		name    string
		yiaddr  [4]byte
		opts    options
		want    Lease
		wantErr bool
	}{
		{"every option", ip, full, Lease{
			Addr:     netip.MustParsePrefix("192.0.2.15/24"),
			Router:   netip.MustParseAddr("192.0.2.1"),
			DNS:      []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("8.8.8.8")},
			Domain:   "example.test",
			Hostname: "guest",
			Server:   netip.MustParseAddr("192.0.2.1"),
			Duration: time.Hour,
		}, false},
		{"no mask: class C", ip, options{}, Lease{Addr: netip.MustParsePrefix("192.0.2.15/24")}, false},
		{"no mask: class A", [4]byte{10, 0, 2, 15}, options{}, Lease{Addr: netip.MustParsePrefix("10.0.2.15/8")}, false},
		{"no mask: class B", [4]byte{172, 16, 0, 9}, options{}, Lease{Addr: netip.MustParsePrefix("172.16.0.9/16")}, false},
		{"non-contiguous mask", ip, options{optSubnetMask: {255, 0, 255, 0}}, Lease{Addr: netip.MustParsePrefix("192.0.2.15/24")}, false},
		{"/32 mask", ip, options{optSubnetMask: {255, 255, 255, 255}}, Lease{Addr: netip.MustParsePrefix("192.0.2.15/32")}, false},
		{"malformed lists ignored", ip, options{optRouter: {1, 2, 3}, optDNS: {}, optLeaseTime: {1}},
			Lease{Addr: netip.MustParsePrefix("192.0.2.15/24")}, false},
		{"no address", [4]byte{}, full, Lease{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := leaseFrom(&message{yiaddr: c.yiaddr, opts: c.opts})
			if (err != nil) != c.wantErr {
				t.Fatalf("error %v, want error %v", err, c.wantErr)
			}
			if !reflect.DeepEqual(l, c.want) {
				t.Errorf("lease %+v\nwant  %+v", l, c.want)
			}
		})
	}
}

func TestUDP4(t *testing.T) {
	src, dst := [4]byte{0, 0, 0, 0}, [4]byte{255, 255, 255, 255}
	pkt := encodeUDP4(src, dst, 68, 67, []byte("hello"))
	port, payload, err := decodeUDP4(append(pkt, 0, 0, 0)) // Ethernet padding
	if err != nil || port != 67 || string(payload) != "hello" {
		t.Fatalf("decode = %d %q %v", port, payload, err)
	}
	if got := fold(sum(pkt[20:], pseudoSum(src, dst, len(pkt)-20))); got != 0xffff {
		t.Errorf("udp checksum does not verify: sum %#x", got)
	}
	corrupt := func(at int, v byte) []byte {
		b := bytes.Clone(pkt)
		b[at] = v
		return b
	}
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"ipv6", corrupt(0, 0x60), "not an IPv4 packet"},
		{"short", pkt[:10], "not an IPv4 packet"},
		{"truncated", pkt[:30], "total length"},
		{"tcp", corrupt(9, 6), "protocol 6"},
		{"fragment", corrupt(6, 0x20), "fragment"},
		{"header checksum", corrupt(12, 1), "checksum"},
		{"udp length", corrupt(25, 200), "udp length 200 at offset 24"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := decodeUDP4(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// fakeServer is a transport whose replies a test scripts.
type fakeServer struct {
	reply  func(n int, req *message) [][]byte // the replies to the nth request
	sent   []*message
	queue  [][]byte
	cancel func(n int) // called after each send, to end the context
}

func (f *fakeServer) send(b []byte) error {
	m, err := unmarshal(b)
	if err != nil {
		return err
	}
	f.sent = append(f.sent, m)
	if f.reply != nil {
		f.queue = append(f.queue, f.reply(len(f.sent), m)...)
	}
	if f.cancel != nil {
		f.cancel(len(f.sent))
	}
	return nil
}

func (f *fakeServer) recv(ctx context.Context, _ time.Time) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(f.queue) == 0 {
		return nil, os.ErrDeadlineExceeded
	}
	b := f.queue[0]
	f.queue = f.queue[1:]
	return b, nil
}

// answer builds the server's reply of type typ to req.
func answer(req *message, typ byte, server byte) []byte {
	return bootp(req.xid, [4]byte{192, 0, 2, 15}, nil, nil,
		[]byte{53, 1, typ, 54, 4, 192, 0, 2, server, 1, 4, 255, 255, 255, 0, 3, 4, 192, 0, 2, 1, 255})
}

func TestClient(t *testing.T) {
	want := Lease{
		Addr:   netip.MustParsePrefix("192.0.2.15/24"),
		Router: netip.MustParseAddr("192.0.2.1"),
		Server: netip.MustParseAddr("192.0.2.1"),
	}
	normal := func(_ int, req *message) [][]byte {
		if req.opts.msgType() == msgDiscover {
			return [][]byte{answer(req, msgOffer, 1)}
		}
		return [][]byte{answer(req, msgAck, 1)}
	}
	for _, c := range []struct {
		name      string
		reply     func(n int, req *message) [][]byte
		wantTypes []byte // message types the client sent
		wantErr   error
	}{
		{"discover offer request ack", normal, []byte{msgDiscover, msgRequest}, nil},
		{"lost discover retransmitted", func(n int, req *message) [][]byte {
			if n == 1 {
				return nil
			}
			return normal(n, req)
		}, []byte{msgDiscover, msgDiscover, msgRequest}, nil},
		{"nak starts over", func(n int, req *message) [][]byte {
			if n == 2 {
				return [][]byte{answer(req, msgNak, 1)}
			}
			return normal(n, req)
		}, []byte{msgDiscover, msgRequest, msgDiscover, msgRequest}, nil},
		{"foreign replies ignored", func(n int, req *message) [][]byte {
			other := answer(req, msgOffer, 1)
			other[4]++ // another transaction
			mac := answer(req, msgOffer, 1)
			mac[33]++ // another client
			ackFromOther := answer(req, msgAck, 9)
			if req.opts.msgType() == msgDiscover {
				return [][]byte{[]byte("junk"), other, mac, answer(req, msgAck, 1), answer(req, msgOffer, 1)}
			}
			return [][]byte{ackFromOther, answer(req, msgAck, 1)}
		}, []byte{msgDiscover, msgRequest}, nil},
		{"no server", nil, []byte{msgDiscover, msgDiscover, msgDiscover}, context.Canceled},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := &fakeServer{reply: c.reply, cancel: func(n int) {
				if n == 3 && c.wantErr != nil {
					cancel()
				}
			}}
			cl := &client{t: f, mac: testMAC, hostname: "guest", delay: func(int) time.Duration { return 0 }}
			l, err := cl.lease(ctx)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("error %v, want %v", err, c.wantErr)
			}
			var types []byte
			for _, m := range f.sent {
				types = append(types, m.opts.msgType())
			}
			if !bytes.Equal(types, c.wantTypes) {
				t.Errorf("client sent types %v, want %v", types, c.wantTypes)
			}
			if c.wantErr != nil {
				return
			}
			if !reflect.DeepEqual(l, want) {
				t.Errorf("lease %+v, want %+v", l, want)
			}
			req := f.sent[len(f.sent)-1]
			checkRequest(t, req)
		})
	}
}

// checkRequest checks a DHCPREQUEST in the SELECTING state (RFC 2131
// §4.3.2 table 5).
func checkRequest(t *testing.T, req *message) {
	t.Helper()
	for code, want := range map[byte][]byte{
		optRequestedIP: {192, 0, 2, 15},
		optServerID:    {192, 0, 2, 1},
		optHostname:    []byte("guest"),
		optClientID:    append([]byte{1}, testMAC...),
	} {
		if got := req.opts[code]; !bytes.Equal(got, want) {
			t.Errorf("request option %d = % x, want % x", code, got, want)
		}
	}
	if req.ciaddr != [4]byte{} || !bytes.Equal(req.chaddr, testMAC) {
		t.Errorf("request ciaddr %v chaddr % x", req.ciaddr, req.chaddr)
	}
}

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		attempt  int
		min, max time.Duration
	}{
		{0, 1750 * time.Millisecond, 2250 * time.Millisecond},
		{1, 3500 * time.Millisecond, 4500 * time.Millisecond},
		{5, 56 * time.Second, 72 * time.Second},
		{40, 56 * time.Second, 72 * time.Second},
	} {
		for range 20 {
			if d := backoff(c.attempt); d < c.min || d >= c.max {
				t.Errorf("backoff(%d) = %v, want in [%v, %v)", c.attempt, d, c.min, c.max)
			}
		}
	}
}

func FuzzParseOptions(f *testing.F) {
	f.Add([]byte{53, 1, 2, 0, 54, 4, 192, 0, 2, 1, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		o := options{}
		if err := o.parse(b, 0); err != nil {
			return
		}
		// What parses re-encodes to options that parse the same.
		enc := o.append(nil)
		back := options{}
		if err := back.parse(enc, 0); err != nil {
			t.Fatalf("re-encoded options do not parse: %v\n% x", err, enc)
		}
		if !reflect.DeepEqual(o, back) {
			t.Fatalf("round trip:\n got %v\nwant %v", back, o)
		}
	})
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(bootp(7, [4]byte{192, 0, 2, 15}, nil, nil, []byte{53, 1, 2, 54, 4, 192, 0, 2, 1, 255}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := unmarshal(b)
		if err != nil {
			return
		}
		leaseFrom(m) // must not panic on any options
		back, err := unmarshal(m.marshal())
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, m)
		}
	})
}
