package disk

import (
	"bytes"
	"context"
	"debug/pe"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/disk/pesign"
	"github.com/c2vm/c2vm/internal/fixtures"
)

// debianStub is Debian's systemd-boot-efi stub for amd64.
const debianStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

func stub(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(debianStub)
	if err != nil {
		fixtures.Skip(t, "EFI stub: %v (apt-get install systemd-boot-efi)", err)
	}
	return b
}

// testUKI is a UKI on the real stub with recognisable contents.
func testUKI(t *testing.T) ([]byte, UKISections) {
	t.Helper()
	u := UKISections{OSRel: []byte("ID=c2vm\n"), Cmdline: "console=ttyS0 panic=-1", Uname: "6.1.0-test",
		Initrd: bytes.Repeat([]byte("initrd"), 100001), Linux: bytes.Repeat([]byte("kernel"), 300007)}
	b, err := BuildUKI(stub(t), "amd64", u)
	if err != nil {
		t.Fatal(err)
	}
	return b, u
}

// TestUKISections reads the UKI back with debug/pe: every section is
// there with its bytes, after the stub's sections in memory, aligned,
// inside SizeOfImage; and the stub's own sections are untouched.
func TestUKISections(t *testing.T) {
	b, u := testUKI(t)
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	want := map[string][]byte{".osrel": u.OSRel, ".cmdline": []byte(u.Cmdline), ".uname": []byte(u.Uname), ".initrd": u.Initrd, ".linux": u.Linux}
	var lastStubEnd uint32
	for _, s := range f.Sections {
		w, ok := want[s.Name]
		if !ok {
			lastStubEnd = max(lastStubEnd, s.VirtualAddress+s.VirtualSize)
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			got, err := s.Data()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:s.VirtualSize], w) {
				t.Errorf("section data differs")
			}
			if s.VirtualAddress < lastStubEnd || s.VirtualAddress%oh.SectionAlignment != 0 || s.Offset%oh.FileAlignment != 0 {
				t.Errorf("VMA %#x / offset %#x: want aligned, after the stub's end %#x", s.VirtualAddress, s.Offset, lastStubEnd)
			}
			if want := uint32(scnInitRead); s.Name == ".linux" && s.Characteristics != scnCodeRead || s.Name != ".linux" && s.Characteristics != want {
				t.Errorf("characteristics %#x", s.Characteristics)
			}
			if s.VirtualAddress+s.VirtualSize > oh.SizeOfImage {
				t.Errorf("section ends at %#x, beyond SizeOfImage %#x", s.VirtualAddress+s.VirtualSize, oh.SizeOfImage)
			}
		})
		delete(want, s.Name)
	}
	if len(want) > 0 {
		t.Errorf("sections missing: %v", want)
	}
	if oh.CheckSum != pesign.Checksum(b, checksumOffset(t, b)) || oh.CheckSum == 0 {
		t.Errorf("checksum %#x is not the file's", oh.CheckSum)
	}
}

func checksumOffset(t *testing.T, b []byte) int {
	p, err := parsePE(b)
	if err != nil {
		t.Fatal(err)
	}
	return p.optHdr + optCheckSum
}

func TestUKIRejects(t *testing.T) {
	s := stub(t)
	signed := append([]byte(nil), s...)
	p, err := parsePE(s)
	if err != nil {
		t.Fatal(err)
	}
	signed[p.optHdr+optSecurityDir] = 0x10
	for _, tc := range []struct {
		name, arch string
		stub       []byte
		want       string
	}{
		{"not PE", "amd64", []byte("#!/bin/sh\n" + strings.Repeat("x", 100)), "not a PE32+"},
		{"wrong machine", "arm64", s, "not arm64"},
		{"truncated", "amd64", s[:0x100], "not a PE32+"},
		{"signed", "amd64", signed, "the stub is signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := BuildUKI(tc.stub, tc.arch, UKISections{Linux: []byte("k")})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// writeTestDisk writes a disk with a UKI, a root and two data partitions.
func writeTestDisk(t *testing.T, dir string) (string, *Layout) {
	t.Helper()
	uki, _ := testUKI(t)
	root := filepath.Join(t.TempDir(), "rootfs.img")
	if err := os.WriteFile(root, bytes.Repeat([]byte("root"), 3<<18+5), 0o644); err != nil {
		t.Fatal(err)
	}
	var data []Data
	for _, n := range []string{"c2vm-vol-a", "c2vm-vol-b"} {
		p := filepath.Join(t.TempDir(), n)
		if err := os.WriteFile(p, []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
		data = append(data, Data{Name: n, File: p})
	}
	p := filepath.Join(dir, "disk.img")
	l, err := Write(context.Background(), p, Options{Arch: "amd64", UKI: uki, Root: root, Data: data, Seed: "sha256:1234",
		Epoch: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return p, l
}

// TestDiskTools checks the disk with util-linux and dosfstools: the
// partition table verifies and reads back as written, and the ESP is a
// clean FAT file system holding the UKI at the removable-media path.
func TestDiskTools(t *testing.T) {
	fixtures.NeedTools(t, "sfdisk", "fsck.fat", "mcopy")
	p, l := writeTestDisk(t, t.TempDir())
	t.Run("sfdisk --verify", func(t *testing.T) {
		out, err := exec.Command("sfdisk", "--verify", p).CombinedOutput()
		if err != nil || strings.Contains(strings.ToLower(string(out)), "warn") {
			t.Errorf("sfdisk --verify: %v\n%s", err, out)
		}
	})
	t.Run("sfdisk --json", func(t *testing.T) {
		out, err := exec.Command("sfdisk", "--json", p).Output()
		if err != nil {
			t.Fatal(err)
		}
		var pt struct {
			PartitionTable struct {
				Label      string
				ID         string
				Partitions []struct {
					Start, Size int64
					Type, UUID  string
					Name        string
				}
			} `json:"partitiontable"`
		}
		if err := json.Unmarshal(out, &pt); err != nil {
			t.Fatal(err)
		}
		got := pt.PartitionTable
		if got.Label != "gpt" || got.ID != l.GUID || len(got.Partitions) != len(l.Partitions) {
			t.Fatalf("sfdisk reads %+v, wrote %+v", got, l)
		}
		for i, w := range l.Partitions {
			g := got.Partitions[i]
			if g.Start*sectorSize != w.Offset || g.Size*sectorSize != w.Size || g.Type != w.Type || g.UUID != w.GUID || g.Name != w.Name {
				t.Errorf("partition %d: sfdisk reads %+v, wrote %+v", i, g, w)
			}
		}
	})
	esp := extract(t, p, l.Partitions[0])
	t.Run("fsck.fat -n", func(t *testing.T) {
		if out, err := exec.Command("fsck.fat", "-n", "-v", esp).CombinedOutput(); err != nil || strings.Contains(string(out), "differ") {
			t.Errorf("fsck.fat: %v\n%s", err, out)
		}
	})
	t.Run("UKI in the ESP", func(t *testing.T) {
		got := filepath.Join(t.TempDir(), "uki")
		if out, err := exec.Command("mcopy", "-i", esp, "::"+l.BootFile, got).CombinedOutput(); err != nil {
			t.Fatalf("mcopy: %v\n%s", err, out)
		}
		uki, _ := testUKI(t)
		if b, _ := os.ReadFile(got); !bytes.Equal(b, uki) {
			t.Errorf("%s in the ESP differs from the UKI", l.BootFile)
		}
	})
	t.Run("partitions hold their files", func(t *testing.T) {
		b, _ := os.ReadFile(extract(t, p, l.Partitions[2]))
		if !bytes.HasPrefix(b, []byte("c2vm-vol-a\x00")) {
			t.Errorf("data partition starts %q", b[:16])
		}
	})
}

// extract copies a partition out of the image, as dd would.
func extract(t *testing.T, img string, p Part) string {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), p.Name+".img")
	if err := os.WriteFile(out, b[p.Offset:p.Offset+p.Size], 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReproducible: the same inputs give the same disk bytes.
func TestReproducible(t *testing.T) {
	a, _ := writeTestDisk(t, t.TempDir())
	b, _ := writeTestDisk(t, t.TempDir())
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if !bytes.Equal(x, y) {
		t.Error("two disk images of the same inputs differ")
	}
}

func TestGUID(t *testing.T) {
	g := MustGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	if g.String() != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" {
		t.Errorf("round trip: %s", g)
	}
	// The ESP type's on-disk bytes, as every GPT holds them.
	if d := g.disk(); !bytes.Equal(d[:8], []byte{0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11}) {
		t.Errorf("disk encoding % x", d)
	}
	if DeriveGUID("a", "x") == DeriveGUID("a", "y") || DeriveGUID("a", "x") != DeriveGUID("a", "x") {
		t.Error("derived GUIDs are not per name, or not stable")
	}
}

// TestWriteCancelled: a cancelled context stops the copying of the
// partitions (a multi-GB root must not outlive a SIGTERM).
func TestWriteCancelled(t *testing.T) {
	uki, _ := testUKI(t)
	root := filepath.Join(t.TempDir(), "rootfs.img")
	if err := os.WriteFile(root, []byte("root"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Write(ctx, filepath.Join(t.TempDir(), "disk.img"), Options{Arch: "amd64", UKI: uki, Root: root})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context: %v, want context.Canceled", err)
	}
}
