package kernel

import "testing"

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
