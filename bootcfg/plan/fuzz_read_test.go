package plan

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzRead: any boot.json is a plan or an error, never a panic; a plan
// read is written back and read again to the same plan, each step
// printing the same.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"version": 2, "steps": [{"op": "mount", "optional": true, "source": "proc", "target": "/proc", "fstype": "proc"}, {"op": "hostname", "name": "c2vm"}, {"op": "run"}]}`))
	f.Add([]byte(`{"version": 2, "steps": [{"op": "binfmt", "name": "qemu-aarch64", "type": "M", "magic": "f0VMRg==", "mask": "/w=="}, {"op": "nosuch"}]}`))
	f.Add([]byte(`{"version": 1}`))
	f.Add([]byte(`{"version": 2, "steps": [null, {"op": ""}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := p.Write(&out); err != nil {
			t.Fatalf("writing a plan read: %v", err)
		}
		again, err := Read(&out)
		if err != nil {
			t.Fatalf("reading a plan written: %v\n%s", err, out.String())
		}
		if len(again.Steps) != len(p.Steps) {
			t.Fatalf("%d steps, then %d", len(p.Steps), len(again.Steps))
		}
		for i := range p.Steps {
			if a, b := describe(p.Steps[i]), describe(again.Steps[i]); a != b {
				t.Fatalf("step %d: %s, then %s", i+1, a, b)
			}
		}
	})
}

// describe prints a step, or says it has no action.
func describe(s Step) string {
	if s.Action == nil {
		return "<nil>"
	}
	return strings.TrimSpace(s.Action.String())
}
