package convert

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/c2vm/c2vm/vmdir"
)

// stage is an output directory under construction: a temp dir beside the
// target, renamed into place by commit, removed by abort. Either the target
// ends complete, or it is absent/unchanged.
type stage struct {
	dir    string // temp dir
	target string // absolute final path
}

func newStage(target string) (*stage, error) {
	abs, err := filepath.Abs(target)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", target, err)
	}
	if err := checkReplaceable(abs); err != nil {
		return nil, err
	}
	parent := filepath.Dir(abs)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("output parent: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "."+filepath.Base(abs)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("output: %w", err)
	}
	return &stage{dir: dir, target: abs}, nil
}

// checkReplaceable refuses to overwrite a directory that is not a previous
// c2vm output (one with a manifest.json), so a typo in -o cannot destroy
// someone's files.
func checkReplaceable(abs string) error {
	fi, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", abs, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("output %s exists and is not a directory", abs)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return fmt.Errorf("output %s: %w", abs, err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(abs, vmdir.ManifestFile)); err != nil {
		return fmt.Errorf("output %s exists and is not a c2vm output (no manifest.json); refusing to replace it", abs)
	}
	return nil
}

// build fills a new stage for target and moves it into place; on an
// error (or a panic) the stage is removed and target is left as it was.
// It returns target's absolute path.
func build(target string, fill func(st *stage) error) (string, error) {
	st, err := newStage(target)
	if err != nil {
		return "", err
	}
	defer st.abortOnPanic()
	if err := fill(st); err != nil {
		st.abort()
		return "", err
	}
	if err := st.commit(); err != nil {
		st.abort()
		return "", err
	}
	return st.target, nil
}

func (s *stage) path(name string) string { return filepath.Join(s.dir, name) }

// commit moves the finished directory into place, replacing an earlier
// output (moved aside first, removed last).
func (s *stage) commit() error {
	old := ""
	if _, err := os.Lstat(s.target); err == nil {
		old = s.dir + ".old"
		if err := os.Rename(s.target, old); err != nil {
			return fmt.Errorf("moving old output aside: %w", err)
		}
	}
	if err := os.Rename(s.dir, s.target); err != nil {
		if old != "" {
			os.Rename(old, s.target)
		}
		return fmt.Errorf("moving output into place: %w", err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

func (s *stage) abort() { os.RemoveAll(s.dir) }

// abortOnPanic, deferred, keeps a panic from leaving a half-written
// .tmp-* directory behind.
func (s *stage) abortOnPanic() {
	if r := recover(); r != nil {
		s.abort()
		panic(r)
	}
}
