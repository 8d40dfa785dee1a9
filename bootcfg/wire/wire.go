// Package wire is the exec protocol between c2vm on the host and the
// guest agent in the init: sessions multiplexed over one byte stream (a
// virtio-serial port), in length-prefixed frames.
//
//	frame := length uint32 (big-endian; of what follows) | type uint8 | session uint32 | payload
//
// The host opens the stream with Hello (the version and a nonce) and the
// guest answers with its own, echoing the nonce; then the host starts sessions (Start, a JSON Process) and
// feeds them (Stdin, CloseStdin, Resize, Signal), and the guest answers with
// Stdout, Stderr, Window (stdin credit) and, last, Exit. Ping/Pong check the
// agent is alive. Session 0 is the connection's own.
//
// Both sides treat the other's bytes as hostile: a frame longer than
// MaxPayload, an unknown type or a malformed payload is an error naming it,
// and nothing is allocated past one frame. It is a leaf package (standard
// library only): the init links it into every VM.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// PortName is the virtio-serial port the agent serves on: QEMU's
// virtserialport name=, libvirt's <target type='virtio' name=...>.
const PortName = "org.c2vm.agent.0"

// Version is the protocol version; Hello carries it and both sides must
// speak the same. 2: Hello carries a nonce the guest echoes (1 had none).
// Both ends ship in one c2vm binary; a VM converted by another c2vm can
// speak another version, and exec then says so.
const Version = 2

// MaxPayload bounds one frame's payload.
const MaxPayload = 64 << 10

// headerSize is the length prefix, the type and the session.
const headerSize = 4 + 1 + 4

// Window is the stdin credit a session starts with: the host sends at most
// this many stdin bytes the guest has not acknowledged with a Window frame,
// so a process that does not read its stdin holds up no other session and
// the agent buffers at most this much per session.
const Window = 256 << 10

// Type is a frame's kind.
type Type uint8

// The frame types. H→G: sent by the host; G→H: by the guest.
const (
	Hello      Type = 1 + iota // both: magic and version, session 0
	Ping                       // H→G: 8-byte nonce, session 0
	Pong                       // G→H: the nonce back
	Start                      // H→G: a Process (JSON) for a new session
	Stdin                      // H→G: bytes for the process's stdin
	CloseStdin                 // H→G: stdin is at its end
	Resize                     // H→G: rows, cols uint16 (the pty's size)
	Signal                     // H→G: signal number uint32
	Stdout                     // G→H: bytes the process wrote
	Stderr                     // G→H: bytes the process wrote (not with a pty)
	Credit                     // G→H: uint32, stdin bytes consumed
	Exit                       // G→H: status int32 + a message; the session's last frame
	lastType   = Exit
)

var typeNames = [...]string{"", "hello", "ping", "pong", "start", "stdin", "close-stdin", "resize", "signal", "stdout", "stderr", "credit", "exit"}

func (t Type) String() string {
	if t == 0 || t > lastType {
		return fmt.Sprintf("type %d", uint8(t))
	}
	return typeNames[t]
}

// Frame is one message. Payload is at most MaxPayload bytes.
type Frame struct {
	Type    Type
	Session uint32
	Payload []byte
}

// Errors a reader returns for bytes that are not a frame.
var (
	ErrFrameSize = errors.New("frame size out of range")
	ErrType      = errors.New("unknown frame type")
	ErrPayload   = errors.New("malformed payload")
)

// Append appends f's encoding to b. A payload over MaxPayload is an error.
func Append(b []byte, f Frame) ([]byte, error) {
	if len(f.Payload) > MaxPayload {
		return b, fmt.Errorf("%s frame: %w: %d bytes > %d", f.Type, ErrFrameSize, len(f.Payload), MaxPayload)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(1+4+len(f.Payload)))
	b = append(b, byte(f.Type))
	b = binary.BigEndian.AppendUint32(b, f.Session)
	return append(b, f.Payload...), nil
}

// Write writes f with one Write call, so writers sharing a stream need
// only serialise their calls.
func Write(w io.Writer, f Frame) error {
	b, err := Append(make([]byte, 0, headerSize+len(f.Payload)), f)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Reader reads frames from a stream.
type Reader struct {
	r   *bufio.Reader
	off int64 // of the next frame
	buf []byte
}

// NewReader reads frames from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, headerSize+MaxPayload)}
}

// Next reads the next frame. Its payload is valid until the following
// call. At the end of the stream between frames it returns io.EOF; inside
// one, io.ErrUnexpectedEOF. Errors name the frame's offset.
func (r *Reader) Next() (Frame, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r.r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, fmt.Errorf("frame at offset %d: %w", r.off, err)
		}
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	f := Frame{Type: Type(h[4]), Session: binary.BigEndian.Uint32(h[5:])}
	if n < 5 || n-5 > MaxPayload {
		return Frame{}, fmt.Errorf("frame at offset %d: %w: length %d (at most %d)", r.off, ErrFrameSize, n, 5+MaxPayload)
	}
	if f.Type == 0 || f.Type > lastType {
		return Frame{}, fmt.Errorf("frame at offset %d: %w %d", r.off, ErrType, h[4])
	}
	if cap(r.buf) < int(n-5) {
		r.buf = make([]byte, n-5)
	}
	f.Payload = r.buf[:n-5]
	if _, err := io.ReadFull(r.r, f.Payload); err != nil {
		return Frame{}, fmt.Errorf("%s frame at offset %d: %w", f.Type, r.off, noEOF(err))
	}
	r.off += int64(4 + n)
	return f, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
