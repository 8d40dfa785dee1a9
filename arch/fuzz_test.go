package arch

import (
	"os"
	"testing"
)

// FuzzCheckStatic: any bytes as a guest init or a qemu-user interpreter
// are a static binary for the arch or an error, never a panic (debug/elf
// reads the headers; the interpreter's name is read bounded).
func FuzzCheckStatic(f *testing.F) {
	if b, err := os.ReadFile("/bin/true"); err == nil {
		f.Add(b[:min(len(b), 4096)])
	}
	f.Add([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, name := range VMNames() {
			a, _ := Lookup(name)
			a.CheckStatic(b)
		}
	})
}
