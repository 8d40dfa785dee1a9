package image

import (
	"io"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// BenchmarkLayerVerify measures what verifying a stored blob before
// decoding it costs against decoding it, on the bench image's one gzip
// layer (~150 MB stored, ~300 MB of tar): "verify" is the extra pass,
// "open+read" the whole stream as the flattener reads it (verify
// included).
func BenchmarkLayerVerify(b *testing.B) {
	img, err := Open(fixtures.Big(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	l := img.Layers[0]
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(l.Size)
		for b.Loop() {
			raw, size, err := l.s.open(l.path)
			if err != nil {
				b.Fatal(err)
			}
			raw.Close()
			if _, err := l.verifyStored(size, Gzip); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open+read", func(b *testing.B) {
		b.SetBytes(l.Size)
		for b.Loop() {
			rc, err := l.Open()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	})
}
