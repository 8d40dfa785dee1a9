package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// magic starts a Hello payload.
const magic = "c2vm-agent"

// NonceSize is the length of a Hello's nonce.
const NonceSize = 8

// HelloPayload is a Hello frame's payload: magic, Version and the nonce.
// The guest's Hello echoes the host's nonce, so that a host tells its own
// answer from one the agent wrote to a host that has left. A nil nonce
// makes the payload of version 1 (a guest answering a host that speaks
// another version: that host can still read the version).
func HelloPayload(nonce []byte) []byte {
	return append(binary.BigEndian.AppendUint16([]byte(magic), Version), nonce...)
}

// ParseHello checks a Hello payload and returns its version and nonce.
// A payload of this Version has a nonce of NonceSize bytes; one of another
// version is only read for its version.
func ParseHello(p []byte) (int, []byte, error) {
	if len(p) < len(magic)+2 || string(p[:len(magic)]) != magic {
		return 0, nil, fmt.Errorf("hello: %w: not a c2vm agent's (%q)", ErrPayload, clip(p))
	}
	v, nonce := int(binary.BigEndian.Uint16(p[len(magic):])), p[len(magic)+2:]
	if v == Version && len(nonce) != NonceSize {
		return v, nil, fmt.Errorf("hello: %w: a nonce of %d bytes, want %d", ErrPayload, len(nonce), NonceSize)
	}
	return v, nonce, nil
}

// Process is a Start frame's payload: what to run, and how. Empty fields
// take the container process's own (user, cwd); Env is added to its env as
// docker exec -e does.
type Process struct {
	Args  []string `json:"args"`
	Env   []string `json:"env,omitempty"`
	User  string   `json:"user,omitempty"` // USER[:GROUP], names or ids
	Cwd   string   `json:"cwd,omitempty"`
	TTY   bool     `json:"tty,omitempty"`
	Rows  uint16   `json:"rows,omitempty"` // the pty's size, with TTY
	Cols  uint16   `json:"cols,omitempty"`
	Stdin bool     `json:"stdin,omitempty"` // false: stdin is /dev/null
}

// Bounds on a Process: arguments and environment fit one frame anyway;
// these keep each string to something a kernel's execve takes.
const maxArgs = 4096

// ParseProcess decodes and checks a Start payload.
func ParseProcess(p []byte) (Process, error) {
	var pr Process
	d := json.NewDecoder(bytes.NewReader(p))
	d.DisallowUnknownFields()
	if err := d.Decode(&pr); err != nil {
		return pr, fmt.Errorf("start: %w: %v", ErrPayload, err)
	}
	if len(pr.Args) == 0 || pr.Args[0] == "" {
		return pr, fmt.Errorf("start: %w: no command", ErrPayload)
	}
	if len(pr.Args)+len(pr.Env) > maxArgs {
		return pr, fmt.Errorf("start: %w: more than %d args and env entries", ErrPayload, maxArgs)
	}
	for _, s := range append(append([]string{pr.User, pr.Cwd}, pr.Args...), pr.Env...) {
		if strings.IndexByte(s, 0) >= 0 {
			return pr, fmt.Errorf("start: %w: a NUL byte in %q", ErrPayload, s)
		}
	}
	for _, kv := range pr.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return pr, fmt.Errorf("start: %w: env %q is not K=V", ErrPayload, kv)
		}
	}
	return pr, nil
}

// Payload encodes p for a Start frame.
func (p Process) Payload() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxPayload {
		return nil, fmt.Errorf("command and environment take %d bytes, more than %d", len(b), MaxPayload)
	}
	return b, nil
}

// Uint32 is the payload of Signal, Credit and (as two uint16) Resize.
func Uint32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// ParseUint32 reads a Signal, Credit or Resize payload.
func ParseUint32(t Type, p []byte) (uint32, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("%s: %w: %d bytes, want 4", t, ErrPayload, len(p))
	}
	return binary.BigEndian.Uint32(p), nil
}

// Size is a Resize payload.
func Size(rows, cols uint16) []byte { return Uint32(uint32(rows)<<16 | uint32(cols)) }

// ParseSize reads a Resize payload.
func ParseSize(p []byte) (rows, cols uint16, err error) {
	v, err := ParseUint32(Resize, p)
	return uint16(v >> 16), uint16(v), err
}

// MaxSignal is the highest Linux signal number (SIGRTMAX).
const MaxSignal = 64

// ParseSignal reads a Signal payload: 1 to MaxSignal.
func ParseSignal(p []byte) (int, error) {
	v, err := ParseUint32(Signal, p)
	if err == nil && (v == 0 || v > MaxSignal) {
		err = fmt.Errorf("signal: %w: %d", ErrPayload, v)
	}
	return int(v), err
}

// MaxMessage bounds an Exit frame's message.
const MaxMessage = 1024

// ExitPayload is an Exit frame: the status and why it is not the process's
// own (the command was not found; "" when it is).
func ExitPayload(status int, msg string) []byte {
	if len(msg) > MaxMessage {
		msg = msg[:MaxMessage]
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(int32(status))), msg...)
}

// ParseExit reads an Exit payload: a status 0-255 and a UTF-8 message.
func ParseExit(p []byte) (int, string, error) {
	if len(p) < 4 || len(p) > 4+MaxMessage {
		return 0, "", fmt.Errorf("exit: %w: %d bytes", ErrPayload, len(p))
	}
	status := int32(binary.BigEndian.Uint32(p))
	msg := p[4:]
	if status < 0 || status > 255 || !utf8.Valid(msg) {
		return 0, "", fmt.Errorf("exit: %w: status %d, message %q", ErrPayload, status, clip(msg))
	}
	return int(status), string(msg), nil
}

// clip shortens hostile bytes for an error message.
func clip(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
