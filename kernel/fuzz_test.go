package kernel

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// FuzzIdentify: hostile kernel headers never panic, and a bzImage's
// payload bounds are checked before use.
func FuzzIdentify(f *testing.F) {
	f.Add(bzImage("6.1.0-28-cloud-amd64", true))
	f.Add(flatImage("ARM\x64", "6.6.1"))
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := Identify(b)
		if err == nil && id.Format == FormatBzImage {
			bzPayload(b)
		}
	})
}

// FuzzModinfo: any bytes, as a module or as its .modinfo, never panic; a
// .modinfo read back from a module built around it is the same bytes; and
// what parseModinfo finds, written back as a .modinfo, parses the same.
func FuzzModinfo(f *testing.F) {
	f.Add([]byte("depends=virtio,virtio_ring\x00softdep=pre: crc32c post: x\x00"))
	f.Add([]byte("depends=\x00softdep=post: pre: a\x00depends=a,,b-c"))
	f.Add(elfModule([]byte("depends=a\x00"), false, 0))
	f.Add(elfModule([]byte("depends=a\x00"), true, 10))
	f.Fuzz(func(t *testing.T, b []byte) {
		if data, err := readModinfo(b); err == nil && len(data) > maxModinfoSize {
			t.Fatalf("hostile module: %d bytes of .modinfo", len(data))
		}
		if len(b) <= maxModinfoSize {
			data, err := readModinfo(elfModule(b, false, 0))
			if err != nil || !bytes.Equal(data, b) {
				t.Fatalf("round trip through an ELF: %q, %v", data, err)
			}
		}
		deps, soft := parseModinfo(b)
		if deps == nil || len(deps)+len(soft) > len(b) {
			t.Fatalf("%d depends, %d softdeps from %d bytes", len(deps), len(soft), len(b))
		}
		for _, n := range deps {
			if n == "" || strings.ContainsAny(n, "-,\x00") {
				t.Fatalf("depends name %q", n)
			}
		}
		for _, n := range soft { // a softdep list is split on blanks, not commas
			if n == "" || strings.ContainsAny(n, "- \t\n\x00") {
				t.Fatalf("softdep name %q", n)
			}
		}
		again := "depends=" + strings.Join(deps, ",") + "\x00softdep=pre: " + strings.Join(soft, " ") + "\x00"
		deps2, soft2 := parseModinfo([]byte(again))
		if !reflect.DeepEqual(deps, deps2) || len(soft)+len(soft2) > 0 && !reflect.DeepEqual(soft, soft2) {
			t.Fatalf("round trip: %q %q, then %q %q", deps, soft, deps2, soft2)
		}
	})
}

// FuzzArMember: a hostile ar archive ends promptly with a one-line error
// or a member inside the file; a well-formed one gives back its data.
func FuzzArMember(f *testing.F) {
	f.Add(ar(arFile{name: "debian-binary", data: []byte("2.0\n")}, arFile{name: "data.tar.xz", data: []byte("x")}), []byte("payload"))
	f.Add(ar(arFile{name: "debian-binary", size: "-68"}), []byte{})
	f.Add([]byte("!<arch>\n"), []byte("odd"))
	f.Fuzz(func(t *testing.T, raw, payload []byte) {
		sr, name, err := arMember(bytes.NewReader(raw), int64(len(raw)), "data.tar")
		if err != nil {
			if !errors.Is(err, ErrUnknownFormat) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q", err)
			}
		} else {
			_, off, n := sr.Outer()
			if !strings.HasPrefix(name, "data.tar") || off < 68 || n < 0 || off+n > int64(len(raw)) {
				t.Fatalf("member %q at %d+%d of a %d-byte file", name, off, n, len(raw))
			}
		}
		deb := ar(arFile{name: "debian-binary", data: []byte("2.0\n")}, arFile{name: "control.tar.gz", data: raw}, arFile{name: "data.tar.zst", data: payload})
		sr, name, err = arMember(bytes.NewReader(deb), int64(len(deb)), "data.tar")
		if err != nil || name != "data.tar.zst" {
			t.Fatalf("well-formed: %q, %v", name, err)
		}
		if got, _ := io.ReadAll(sr); !bytes.Equal(got, payload) {
			t.Fatalf("data %q, want %q", got, payload)
		}
	})
}
