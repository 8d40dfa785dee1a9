package netup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// BOOTP/DHCP wire constants, RFC 2131 §2 and §3, RFC 2132 §9.
const (
	opRequest = 1
	opReply   = 2

	htypeEthernet = 1
	flagBroadcast = 0x8000

	headerLen = 236 // op .. file, before the magic cookie
	cookieLen = 4
	// minLen is the BOOTP minimum (RFC 1542 §2.1): some servers and relays
	// drop shorter requests.
	minLen = 300

	serverPort = 67
	clientPort = 68
)

// magicCookie starts the options field (RFC 2131 §3).
var magicCookie = [cookieLen]byte{99, 130, 83, 99}

// Option codes this client sends or reads (RFC 2132).
const (
	optPad          = 0
	optSubnetMask   = 1
	optRouter       = 3
	optDNS          = 6
	optHostname     = 12
	optDomain       = 15
	optRequestedIP  = 50
	optLeaseTime    = 51
	optOverload     = 52
	optMessageType  = 53
	optServerID     = 54
	optParamRequest = 55
	optMaxSize      = 57
	optClientID     = 61
	optEnd          = 255
)

// DHCP message types, option 53 (RFC 2132 §9.6).
const (
	msgDiscover = 1
	msgOffer    = 2
	msgRequest  = 3
	msgAck      = 5
	msgNak      = 6
)

// options maps an option code to its value. Repeated codes are
// concatenated on decode and long values split on encode (RFC 3396).
type options map[byte][]byte

// message is a BOOTP message with its DHCP options.
type message struct {
	op     byte
	xid    uint32
	secs   uint16
	flags  uint16
	ciaddr [4]byte
	yiaddr [4]byte
	siaddr [4]byte
	giaddr [4]byte
	chaddr []byte // hardware address, at most 16 bytes
	opts   options
}

// marshal encodes m with its options in a fixed order (message type
// first, then by code) and pads it to the BOOTP minimum.
func (m *message) marshal() []byte {
	b := make([]byte, headerLen, minLen)
	b[0] = m.op
	b[1] = htypeEthernet
	b[2] = byte(copy(b[28:44], m.chaddr))
	binary.BigEndian.PutUint32(b[4:], m.xid)
	binary.BigEndian.PutUint16(b[8:], m.secs)
	binary.BigEndian.PutUint16(b[10:], m.flags)
	copy(b[12:], m.ciaddr[:])
	copy(b[16:], m.yiaddr[:])
	copy(b[20:], m.siaddr[:])
	copy(b[24:], m.giaddr[:])
	b = append(b, magicCookie[:]...)
	b = m.opts.append(b)
	for len(b) < minLen {
		b = append(b, optPad)
	}
	return b
}

// append encodes the options and the end option: the message type
// first (RFC 2131 does not require it, but clients do it and some servers
// look only there), then by code, so that the bytes are always the same.
func (o options) append(b []byte) []byte {
	b = o.appendOne(b, optMessageType)
	for c := optPad + 1; c < optEnd; c++ {
		if c != optMessageType {
			b = o.appendOne(b, byte(c))
		}
	}
	return append(b, optEnd)
}

// appendOne encodes option c, split into 255-byte pieces (RFC 3396).
func (o options) appendOne(b []byte, c byte) []byte {
	v, ok := o[c]
	if !ok {
		return b
	}
	for first := true; first || len(v) > 0; first = false {
		n := min(len(v), 255)
		b = append(b, c, byte(n))
		b = append(b, v[:n]...)
		v = v[n:]
	}
	return b
}

// errShort reports a message too short for the fixed BOOTP header.
var errShort = errors.New("dhcp message shorter than the BOOTP header and magic cookie")

// unmarshal decodes a BOOTP message and its options, including options
// overloaded into the file and sname fields (RFC 2132 §9.3).
func unmarshal(b []byte) (*message, error) {
	if len(b) < headerLen+cookieLen {
		return nil, fmt.Errorf("%w: %d bytes", errShort, len(b))
	}
	if !bytes.Equal(b[headerLen:headerLen+cookieLen], magicCookie[:]) {
		return nil, fmt.Errorf("dhcp magic cookie at offset %d: got % x", headerLen, b[headerLen:headerLen+cookieLen])
	}
	m := &message{
		op:    b[0],
		xid:   binary.BigEndian.Uint32(b[4:]),
		secs:  binary.BigEndian.Uint16(b[8:]),
		flags: binary.BigEndian.Uint16(b[10:]),
	}
	copy(m.ciaddr[:], b[12:])
	copy(m.yiaddr[:], b[16:])
	copy(m.siaddr[:], b[20:])
	copy(m.giaddr[:], b[24:])
	m.chaddr = bytes.Clone(b[28 : 28+min(int(b[2]), 16)])
	m.opts = options{}
	if err := m.opts.parse(b[headerLen+cookieLen:], headerLen+cookieLen); err != nil {
		return nil, err
	}
	// RFC 3396 §5: the options field, then file, then sname.
	over := m.opts[optOverload]
	if len(over) == 1 && over[0]&1 != 0 {
		if err := m.opts.parse(b[108:236], 108); err != nil {
			return nil, fmt.Errorf("overloaded file field: %w", err)
		}
	}
	if len(over) == 1 && over[0]&2 != 0 {
		if err := m.opts.parse(b[44:108], 44); err != nil {
			return nil, fmt.Errorf("overloaded sname field: %w", err)
		}
	}
	return m, nil
}

// parse reads options from b up to the end option or the end of b; base
// is b's offset in the message, for errors.
func (o options) parse(b []byte, base int) error {
	for i := 0; i < len(b); {
		c := b[i]
		switch c {
		case optPad:
			i++
			continue
		case optEnd:
			return nil
		}
		if i+1 >= len(b) {
			return fmt.Errorf("dhcp option %d at offset %d: no length byte", c, base+i)
		}
		n := int(b[i+1])
		if i+2+n > len(b) {
			return fmt.Errorf("dhcp option %d at offset %d: length %d runs past the end", c, base+i, n)
		}
		o[c] = append(o[c], b[i+2:i+2+n]...)
		if o[c] == nil {
			o[c] = []byte{} // present but empty
		}
		i += 2 + n
	}
	return nil
}

// msgType returns option 53, or 0 when it is missing or malformed.
func (o options) msgType() byte {
	if v := o[optMessageType]; len(v) == 1 {
		return v[0]
	}
	return 0
}

// addr returns the first IPv4 address of an option, invalid if none.
func (o options) addr(c byte) netip.Addr {
	if a := o.addrs(c); len(a) > 0 {
		return a[0]
	}
	return netip.Addr{}
}

// addrs returns an option's list of IPv4 addresses, nil when its length
// is not a multiple of 4.
func (o options) addrs(c byte) []netip.Addr {
	v := o[c]
	if len(v) == 0 || len(v)%4 != 0 {
		return nil
	}
	var a []netip.Addr
	for i := 0; i < len(v); i += 4 {
		a = append(a, netip.AddrFrom4([4]byte(v[i:i+4])))
	}
	return a
}

// Lease is what a DHCP server acknowledged.
type Lease struct {
	Addr     netip.Prefix  // the address and the subnet mask (option 1)
	Router   netip.Addr    // the first router (option 3); invalid when none
	DNS      []netip.Addr  // option 6
	Domain   string        // option 15, the resolv.conf search domain
	Hostname string        // option 12, when the server names the client
	Server   netip.Addr    // server identifier (option 54)
	Duration time.Duration // lease time (option 51); 0 when absent
}

// leaseFrom reads a lease from a DHCPACK.
func leaseFrom(m *message) (Lease, error) {
	ip := netip.AddrFrom4(m.yiaddr)
	if ip.IsUnspecified() {
		return Lease{}, errors.New("dhcp ack without an address (yiaddr 0.0.0.0)")
	}
	bits := maskBits(m.opts[optSubnetMask], ip)
	l := Lease{
		Addr:     netip.PrefixFrom(ip, bits),
		Router:   m.opts.addr(optRouter),
		DNS:      m.opts.addrs(optDNS),
		Domain:   optString(m.opts[optDomain]),
		Hostname: optString(m.opts[optHostname]),
		Server:   m.opts.addr(optServerID),
	}
	if v := m.opts[optLeaseTime]; len(v) == 4 {
		l.Duration = time.Duration(binary.BigEndian.Uint32(v)) * time.Second
	}
	return l, nil
}

// maskBits returns the prefix length of a subnet mask option. Without a
// valid (contiguous) mask the client falls back to the address's class,
// as RFC 2131 §4.4.1 lets it pick a default and dhcpcd does.
func maskBits(mask []byte, ip netip.Addr) int {
	if len(mask) == 4 {
		v := binary.BigEndian.Uint32(mask)
		ones := 0
		for v&(1<<31) != 0 {
			v <<= 1
			ones++
		}
		if v == 0 {
			return ones
		}
	}
	switch first := ip.As4()[0]; {
	case first < 128:
		return 8
	case first < 192:
		return 16
	default:
		return 24
	}
}

// optString reads a text option; some servers end it with NUL bytes,
// which RFC 2132 §2 says they should not.
func optString(v []byte) string {
	return string(bytes.TrimRight(v, "\x00"))
}
