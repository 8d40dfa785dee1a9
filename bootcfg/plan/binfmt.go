package plan

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadBinfmt is wrapped by every binfmt.d parse error.
var ErrBadBinfmt = errors.New("bad binfmt_misc entry")

// Line formats b as a binfmt_misc registration string,
// ":name:type:offset:magic:mask:interpreter:flags", with magic and mask
// escaped as \xHH so any byte (':' included) survives.
func (b Binfmt) Line() string {
	off := ""
	if b.Offset != 0 {
		off = strconv.Itoa(b.Offset)
	}
	return fmt.Sprintf(":%s:%s:%s:%s:%s:%s:%s", b.Name, b.Type, off, hexEscape(b.Magic), hexEscape(b.Mask), b.Interpreter, b.Flags)
}

func hexEscape(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, "\\x%02x", c)
	}
	return s.String()
}

// ParseBinfmtD parses a systemd-binfmt file (binfmt.d(5)): one
// registration string per line; empty lines and lines starting with '#'
// or ';' are comments. Errors name the line.
func ParseBinfmtD(data []byte) ([]Binfmt, error) {
	var out []Binfmt
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		b, err := ParseBinfmt(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBinfmt, err)
	}
	return out, nil
}

// ParseBinfmt parses one registration string as the kernel does
// (Documentation/admin-guide/binfmt-misc.rst): the first character is the
// field separator.
func ParseBinfmt(line string) (Binfmt, error) {
	if len(line) < 2 {
		return Binfmt{}, fmt.Errorf("%w: %q is too short", ErrBadBinfmt, line)
	}
	f := strings.Split(line[1:], line[:1])
	if len(f) < 6 || len(f) > 7 {
		return Binfmt{}, fmt.Errorf("%w: %q has %d fields, want 6 or 7 (name:type:offset:magic:mask:interpreter[:flags])", ErrBadBinfmt, line, len(f))
	}
	b := Binfmt{Name: f[0], Type: f[1], Interpreter: f[5]}
	if len(f) == 7 {
		b.Flags = f[6]
	}
	if b.Name == "" || b.Name == "." || b.Name == ".." || strings.Contains(b.Name, "/") {
		return Binfmt{}, fmt.Errorf("%w: invalid name %q", ErrBadBinfmt, b.Name)
	}
	if b.Type != "M" && b.Type != "E" {
		return Binfmt{}, fmt.Errorf("%w: %s: type %q, want M or E", ErrBadBinfmt, b.Name, b.Type)
	}
	if b.Interpreter == "" {
		return Binfmt{}, fmt.Errorf("%w: %s: no interpreter", ErrBadBinfmt, b.Name)
	}
	if f[2] != "" {
		off, err := strconv.Atoi(f[2])
		if err != nil || off < 0 || off > 127 {
			return Binfmt{}, fmt.Errorf("%w: %s: offset %q", ErrBadBinfmt, b.Name, f[2])
		}
		b.Offset = off
	}
	var err error
	if b.Magic, err = unescape(f[3]); err != nil || len(b.Magic) == 0 {
		return Binfmt{}, fmt.Errorf("%w: %s: magic %q", ErrBadBinfmt, b.Name, f[3])
	}
	if b.Mask, err = unescape(f[4]); err != nil {
		return Binfmt{}, fmt.Errorf("%w: %s: mask %q", ErrBadBinfmt, b.Name, f[4])
	}
	if len(b.Mask) > 0 && len(b.Mask) != len(b.Magic) && b.Type == "M" {
		return Binfmt{}, fmt.Errorf("%w: %s: mask is %d bytes, magic %d", ErrBadBinfmt, b.Name, len(b.Mask), len(b.Magic))
	}
	for _, c := range b.Flags {
		if !strings.ContainsRune("POCF", c) {
			return Binfmt{}, fmt.Errorf("%w: %s: unknown flag %q", ErrBadBinfmt, b.Name, c)
		}
	}
	return b, nil
}

// unescape decodes the \xHH escapes binfmt_misc accepts in magic and mask.
func unescape(s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+4 <= len(s) && s[i+1] == 'x' {
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return nil, err
			}
			out = append(out, byte(v))
			i += 3
			continue
		}
		if i+1 < len(s) && s[i+1] == '\\' {
			out = append(out, '\\')
			i++
			continue
		}
		return nil, fmt.Errorf("bad escape at %d", i)
	}
	return out, nil
}

// Binfmt is one binfmt_misc registration (see the kernel's
// Documentation/admin-guide/binfmt-misc.rst): ":name:type:offset:magic:mask:interpreter:flags".
type Binfmt struct {
	Name string `json:"name"`
	// Type is "M" (magic) or "E" (extension).
	Type   string `json:"type"`
	Offset int    `json:"offset,omitempty"`
	// Magic and Mask are raw bytes (JSON: base64).
	Magic       []byte `json:"magic"`
	Mask        []byte `json:"mask,omitempty"`
	Interpreter string `json:"interpreter"`
	Flags       string `json:"flags,omitempty"`
}
