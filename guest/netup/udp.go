package netup

import (
	"encoding/binary"
	"fmt"
)

// The DHCP client speaks before the interface has an address, so it
// writes its own IPv4 and UDP headers onto a packet socket: the kernel's
// UDP stack would drop a server's unicast reply to an address it does not
// have yet (busybox udhcpc does the same, networking/udhcp/dhcpc.c).

const (
	ipHeaderLen  = 20 // without options
	udpHeaderLen = 8
	protoUDP     = 17
	ipTTL        = 64
)

// encodeUDP4 wraps payload in UDP and IPv4 headers (RFC 791, RFC 768).
func encodeUDP4(src, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	total := ipHeaderLen + udpHeaderLen + len(payload)
	b := make([]byte, total)
	b[0] = 0x45 // version 4, 5 words of header
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	b[8] = ipTTL
	b[9] = protoUDP
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	binary.BigEndian.PutUint16(b[10:], ^fold(sum(b[:ipHeaderLen], 0)))

	u := b[ipHeaderLen:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(udpHeaderLen+len(payload)))
	copy(u[udpHeaderLen:], payload)
	c := ^fold(sum(u, pseudoSum(src, dst, len(u))))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return b
}

// decodeUDP4 returns the destination port and payload of an unfragmented
// IPv4 UDP packet. The UDP checksum is not verified: a packet socket sees
// packets whose checksum the sender left to offload (virtio-net's
// CHECKSUM_PARTIAL), and the DHCP transaction id and cookie already tie a
// reply to our request.
func decodeUDP4(b []byte) (dport uint16, payload []byte, err error) {
	if len(b) < ipHeaderLen || b[0]>>4 != 4 {
		return 0, nil, fmt.Errorf("not an IPv4 packet (%d bytes)", len(b))
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	switch {
	case ihl < ipHeaderLen || total < ihl+udpHeaderLen || total > len(b):
		return 0, nil, fmt.Errorf("ipv4 header length %d, total length %d in a %d-byte packet", ihl, total, len(b))
	case b[9] != protoUDP:
		return 0, nil, fmt.Errorf("ipv4 protocol %d, not UDP", b[9])
	case binary.BigEndian.Uint16(b[6:])&0x3fff != 0:
		return 0, nil, fmt.Errorf("ipv4 fragment")
	case fold(sum(b[:ihl], 0)) != 0xffff:
		return 0, nil, fmt.Errorf("ipv4 header checksum mismatch")
	}
	u := b[ihl:total]
	ulen := int(binary.BigEndian.Uint16(u[4:]))
	if ulen < udpHeaderLen || ulen > len(u) {
		return 0, nil, fmt.Errorf("udp length %d at offset %d in a %d-byte datagram", ulen, ihl+4, len(u))
	}
	return binary.BigEndian.Uint16(u[2:]), u[udpHeaderLen:ulen], nil
}

// sum adds b as big-endian 16-bit words to acc (RFC 1071).
func sum(b []byte, acc uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	return acc
}

// fold folds the carries of a ones' complement sum into 16 bits.
func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// pseudoSum is the UDP pseudo-header's share of the checksum (RFC 768).
func pseudoSum(src, dst [4]byte, udpLen int) uint32 {
	return sum(src[:], 0) + sum(dst[:], 0) + protoUDP + uint32(udpLen)
}
