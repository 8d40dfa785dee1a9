package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	frames := []Frame{
		{Type: Hello, Payload: HelloPayload([]byte("12345678"))},
		{Type: Ping, Payload: []byte("12345678")},
		{Type: Stdin, Session: 7, Payload: bytes.Repeat([]byte{0xff}, MaxPayload)},
		{Type: CloseStdin, Session: 7, Payload: []byte{}},
		{Type: Resize, Session: 1<<32 - 1, Payload: Size(24, 80)},
		{Type: Exit, Session: 7, Payload: ExitPayload(127, "sh: not found")},
	}
	var buf bytes.Buffer
	for _, f := range frames {
		if err := Write(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(&buf)
	for i, want := range frames {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.Type != want.Type || got.Session != want.Session || !bytes.Equal(got.Payload, want.Payload) {
			t.Errorf("frame %d: got %s/%d/%d bytes, want %s/%d/%d bytes", i, got.Type, got.Session, len(got.Payload), want.Type, want.Session, len(want.Payload))
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

func header(n uint32, t Type, session uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, n)
	return binary.BigEndian.AppendUint32(append(b, byte(t)), session)
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"length under the header", header(4, Stdin, 1), ErrFrameSize},
		{"length past MaxPayload", header(5+MaxPayload+1, Stdout, 1), ErrFrameSize},
		{"length 4 GiB", header(1<<32-1, Stdout, 1), ErrFrameSize},
		{"type 0", header(5, 0, 1), ErrType},
		{"type past the last", header(5, lastType+1, 1), ErrType},
		{"short header", []byte{0, 0, 0}, io.ErrUnexpectedEOF},
		{"short payload", append(header(5+10, Stdout, 1), "abc"...), io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tc.in)).Next()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), "offset 0") {
				t.Errorf("%v: does not name the offset", err)
			}
		})
	}
}

func TestWriteOversize(t *testing.T) {
	err := Write(io.Discard, Frame{Type: Stdout, Payload: make([]byte, MaxPayload+1)})
	if !errors.Is(err, ErrFrameSize) {
		t.Fatalf("got %v, want ErrFrameSize", err)
	}
}

func TestPayloads(t *testing.T) {
	if v, n, err := ParseHello(HelloPayload([]byte("nonce-42"))); err != nil || v != Version || string(n) != "nonce-42" {
		t.Errorf("hello: %d, %q, %v", v, n, err)
	}
	// Another version's hello is read for its version: version 1 had no
	// nonce, and a guest answers a host of another version so.
	if v, _, err := ParseHello([]byte("c2vm-agent\x00\x01")); err != nil || v != 1 {
		t.Errorf("a version 1 hello: %d, %v", v, err)
	}
	for name, bad := range map[string][]byte{
		"foreign":       []byte("SSH-2.0-OpenSSH"),
		"no nonce":      HelloPayload(nil),
		"a short nonce": HelloPayload([]byte("1234567")),
		"no version":    []byte("c2vm-agent\x00"),
	} {
		if _, _, err := ParseHello(bad); !errors.Is(err, ErrPayload) {
			t.Errorf("%s hello: %v", name, err)
		}
	}
	if r, c, err := ParseSize(Size(50, 132)); r != 50 || c != 132 || err != nil {
		t.Errorf("size: %d %d %v", r, c, err)
	}
	for _, bad := range [][]byte{Uint32(0), Uint32(65), {1, 2}} {
		if _, err := ParseSignal(bad); !errors.Is(err, ErrPayload) {
			t.Errorf("signal %x: %v", bad, err)
		}
	}
	if s, m, err := ParseExit(ExitPayload(126, "permission denied")); s != 126 || m != "permission denied" || err != nil {
		t.Errorf("exit: %d %q %v", s, m, err)
	}
	for _, bad := range [][]byte{{0, 0}, ExitPayload(-1, ""), ExitPayload(256, ""), append(Uint32(0), 0xff, 0xfe), append(Uint32(0), make([]byte, MaxMessage+1)...)} {
		if _, _, err := ParseExit(bad); !errors.Is(err, ErrPayload) {
			t.Errorf("exit %x: %v", clip(bad), err)
		}
	}
}

func TestProcess(t *testing.T) {
	p := Process{Args: []string{"sh", "-c", "echo hi"}, Env: []string{"A=1"}, User: "1000:1000", Cwd: "/tmp", TTY: true, Rows: 24, Cols: 80}
	b, err := p.Payload()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseProcess(b)
	if err != nil || got.Cwd != p.Cwd || got.Args[2] != "echo hi" || got.Rows != 24 || !got.TTY {
		t.Fatalf("got %+v, %v", got, err)
	}
	for name, bad := range map[string]string{
		"no args":     `{"args":[]}`,
		"empty arg0":  `{"args":[""]}`,
		"NUL":         `{"args":["a\u0000b"]}`,
		"env not K=V": `{"args":["a"],"env":["novalue"]}`,
		"unknown key": `{"args":["a"],"privileged":true}`,
		"not JSON":    `{"args":`,
		"rows past":   `{"args":["a"],"rows":70000}`,
	} {
		if _, err := ParseProcess([]byte(bad)); !errors.Is(err, ErrPayload) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := (Process{Args: []string{strings.Repeat("x", MaxPayload)}}).Payload(); err == nil {
		t.Error("an oversize command encoded")
	}
}

// FuzzReader feeds arbitrary bytes to the decoder: it never panics,
// never returns a frame past the bounds, and what it returns re-encodes to
// the bytes it read.
func FuzzReader(f *testing.F) {
	var seed bytes.Buffer
	Write(&seed, Frame{Type: Hello, Payload: HelloPayload([]byte("nonce-42"))})
	Write(&seed, Frame{Type: Stdout, Session: 3, Payload: []byte("hello\n")})
	Write(&seed, Frame{Type: Exit, Session: 3, Payload: ExitPayload(0, "")})
	f.Add(seed.Bytes())
	f.Add(header(5+MaxPayload+1, Stdout, 1))
	f.Add([]byte{0, 0, 0, 5, 99, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		var out []byte
		for {
			fr, err := r.Next()
			if err != nil {
				break
			}
			if len(fr.Payload) > MaxPayload || fr.Type == 0 || fr.Type > lastType {
				t.Fatalf("frame out of bounds: %s, %d bytes", fr.Type, len(fr.Payload))
			}
			ParseHello(fr.Payload)
			ParseProcess(fr.Payload)
			ParseExit(fr.Payload)
			ParseSignal(fr.Payload)
			if out, err = Append(out, fr); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.HasPrefix(in, out) {
			t.Fatal("re-encoded frames differ from the input")
		}
	})
}
