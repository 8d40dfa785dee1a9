package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

// MaxLog bounds a console log: past it, console.log becomes console.log.1
// (replacing the older one) and a new console.log starts, so a VM keeps
// at most twice this much of its output.
const MaxLog = 1 << 20

// Log is a console log that rotates past a size.
type Log struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

// OpenLog opens path for appending; max is the size that rotates it.
func OpenLog(path string, max int64) (*Log, error) {
	l := &Log{path: path, max: max}
	return l, l.open()
}

func (l *Log) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log: %w", err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Write appends p, first rotating the log when p would take it past
// its size (a write is never split, so a line stays whole).
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.size > 0 && l.size+int64(len(p)) > l.max {
		l.f.Close()
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return 0, fmt.Errorf("rotating the log: %w", err)
		}
		if err := l.open(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// Close closes the log file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// TailLog returns the last n lines (all when n < 0) of the log at path,
// its rotated part included, and the offset in path where it ends.
func TailLog(path string, n int) ([]byte, int64, error) {
	old, err := os.ReadFile(path + ".1")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, err
	}
	cur, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, err
	}
	return lastLines(append(old, cur...), n), int64(len(cur)), nil
}

// lastLines is the last n lines of b (all when n < 0); a last line
// without its newline counts.
func lastLines(b []byte, n int) []byte {
	if n < 0 {
		return b
	}
	start := len(b)
	if start > 0 && b[start-1] == '\n' {
		start--
	}
	for ; n > 0; n-- {
		j := bytes.LastIndexByte(b[:start], '\n')
		if j < 0 {
			return b
		}
		start = j
	}
	if start == len(b) {
		return nil
	}
	return b[start+1:]
}

// FollowLog copies what is appended to the log at path from offset on
// to w, across rotations, until ended reports true; then it copies what
// is left and returns.
func FollowLog(ctx context.Context, path string, offset int64, w io.Writer, ended func() bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	for {
		last := ended()
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if rotated(f, path) {
			// What the writer added to the old file before renaming it.
			if _, err := io.Copy(w, f); err != nil {
				return err
			}
			nf, err := os.Open(path)
			if err != nil {
				return err
			}
			f.Close()
			f = nf
			continue
		}
		if last {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// rotated reports whether path is no longer the file f.
func rotated(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && !os.SameFile(a, b)
}
