package netup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// A minimal rtnetlink client (rtnetlink(7)): one request per socket, its
// replies collected until the kernel's acknowledgement.

// nlRequest sends one request of type typ with body and returns the
// messages the kernel answered before its acknowledgement, or the errno
// the acknowledgement carried.
func nlRequest(typ, flags uint16, body []byte) ([]syscall.NetlinkMessage, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	b := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	b = append(b, body...)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(b[8:], 1) // sequence number; one request per socket
	// write and read, not sendto and recvfrom: an unbound netlink socket
	// talks to the kernel (netlink(7)), and recvfrom's decoding of every
	// address family would add tens of kilobytes to the init.
	if _, err := unix.Write(fd, b); err != nil {
		return nil, fmt.Errorf("netlink send: %w", err)
	}
	var replies []syscall.NetlinkMessage
	for {
		// A new buffer each time: the replies kept point into it.
		buf := make([]byte, 1<<16)
		n, err := unix.Read(fd, buf)
		if err != nil {
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("netlink reply: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR {
				replies = append(replies, m)
				continue
			}
			if len(m.Data) < 4 {
				return nil, errors.New("netlink error message too short")
			}
			if e := int32(ne.Uint32(m.Data)); e != 0 {
				return nil, unix.Errno(-e)
			}
			return replies, nil
		}
	}
}

// attr appends a netlink attribute, padded to 4 bytes.
func attr(b []byte, typ uint16, data []byte) []byte {
	n := unix.SizeofRtAttr + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(n))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// attrValue returns the value of the attribute typ in b, a list of
// attributes, or nil.
func attrValue(b []byte, typ uint16) []byte {
	for len(b) >= unix.SizeofRtAttr {
		n := int(binary.NativeEndian.Uint16(b))
		if n < unix.SizeofRtAttr || n > len(b) {
			return nil
		}
		// The type's top two bits are flags (NLA_TYPE_MASK,
		// include/uapi/linux/netlink.h).
		if binary.NativeEndian.Uint16(b[2:])&0x3fff == typ {
			return b[unix.SizeofRtAttr:n]
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	return nil
}
