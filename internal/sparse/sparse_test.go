package sparse

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCopy(t *testing.T) {
	src := make([]byte, 5*blockSize+100)
	copy(src, "head")
	copy(src[3*blockSize+7:], "middle")
	src[len(src)-1] = 1
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const off = 4096
	n, err := Copy(context.Background(), f, off, bytes.NewReader(src))
	if err != nil || n != int64(len(src)) {
		t.Fatalf("Copy = %d, %v; want %d", n, err, len(src))
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[off:], src) || !IsZero(got[:off]) {
		t.Error("copy differs from its source")
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	// Three blocks hold data; the two of zeros must stay holes.
	if used := st.Blocks * 512; used > 3*blockSize+2*4096 {
		t.Errorf("%d bytes allocated for 3 MiB of data: zero blocks were written", used)
	}
}

// endless is a source that never ends and cancels ctx at its tenth read;
// after 100 reads it gives up, so a Copy that ignores ctx fails the test
// rather than hanging it.
type endless struct {
	reads  int
	cancel func()
}

func (e *endless) Read(p []byte) (int, error) {
	if e.reads++; e.reads == 10 {
		e.cancel()
	}
	if e.reads > 100 {
		return 0, errors.New("read on after cancel")
	}
	for i := range p {
		p[i] = 1
	}
	return len(p), nil
}

func TestCopyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &endless{cancel: cancel}
	n, err := Copy(ctx, discard{}, 0, src)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Copy after cancel = %d bytes, %v; want context.Canceled", n, err)
	}
	if n > 10*blockSize {
		t.Errorf("copied %d bytes after the cancel", n-10*blockSize)
	}
}

type discard struct{}

func (discard) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

func TestIsZero(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want bool
	}{
		{nil, true}, {[]byte{0}, true}, {make([]byte, 4097), true},
		{[]byte{1}, false}, {append(make([]byte, 4096), 1), false}, {[]byte{1, 1, 1}, false},
		{append([]byte{0, 0, 7}, make([]byte, 100)...), false},
	} {
		if got := IsZero(tc.b); got != tc.want {
			t.Errorf("IsZero(%d bytes ...) = %v, want %v", len(tc.b), got, tc.want)
		}
	}
}
