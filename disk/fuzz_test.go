package disk

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzBuildUKI: any bytes as the EFI stub give a UKI or an error, never a
// panic: the stub's PE headers are read by debug/pe and then indexed by
// hand to be extended in place (parsePE, BuildUKI). Seeded with Debian's
// stub when installed.
func FuzzBuildUKI(f *testing.F) {
	if b, err := os.ReadFile(debianStub); err == nil {
		f.Add(b)
	}
	f.Add([]byte("MZ\x00\x00"))
	f.Fuzz(func(t *testing.T, stub []byte) {
		u := UKISections{OSRel: []byte("ID=c2vm\n"), Cmdline: "console=ttyS0", Uname: "6.1.0", Initrd: []byte("initrd"), Linux: []byte("kernel")}
		_, err := BuildUKI(stub, "amd64", u)
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
		if _, perr := parsePE(stub); perr != nil && !errors.Is(perr, ErrNotPE) {
			t.Fatalf("parsePE: %v, not ErrNotPE", perr)
		}
	})
}
