package convert

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrBusy is an output another conversion is writing.
var ErrBusy = errors.New("another c2vm is writing it")

// outputLock is an exclusive flock(2) on .NAME.lock beside an output, held
// from the temp dir's making to its rename into place (or removal): two
// conversions into one -o cannot mix their files, and the second says so
// at once. The kernel drops the lock of a killed process, so a SIGKILLed
// run never blocks the next.
type outputLock struct {
	path string
	f    *os.File
}

func lockOutput(abs string) (*outputLock, error) {
	p := filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".lock")
	for {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", abs, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("output %s: %w (%s is locked)", abs, ErrBusy, p)
			}
			return nil, fmt.Errorf("output %s: locking %s: %w", abs, p, err)
		}
		// The holder before us removes the file as it unlocks: a lock on
		// an unlinked file guards nothing, so take the one now at p.
		if same(f, p) {
			return &outputLock{path: p, f: f}, nil
		}
		f.Close()
	}
}

func same(f *os.File, p string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(p)
	return err == nil && os.SameFile(a, b)
}

// release removes the lock file and unlocks; a second call does nothing.
func (l *outputLock) release() {
	if l == nil || l.f == nil {
		return
	}
	os.Remove(l.path)
	l.f.Close()
	l.f = nil
}
