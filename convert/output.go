package convert

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/c2vm/c2vm/vmdir"
)

// stage is an output directory under construction: a temp dir beside the
// target, renamed into place by commit, removed by abort. Either the target
// ends complete, or it is absent/unchanged.
type stage struct {
	dir    string // temp dir
	target string // absolute final path
	lock   *outputLock
}

func newStage(target string) (*stage, error) {
	abs, err := filepath.Abs(target)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", target, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("output %s: %w", abs, err)
	}
	lock, err := lockOutput(abs)
	if err != nil {
		return nil, err
	}
	st := &stage{target: abs, lock: lock}
	if err := st.start(); err != nil {
		lock.release()
		return nil, err
	}
	return st, nil
}

// start, under the output's lock, removes what a killed run into the
// same place left (its temp dir, an old output it had moved aside) and
// makes the temp dir.
func (s *stage) start() error {
	if err := checkReplaceable(s.target); err != nil {
		return err
	}
	if err := removeStale(s.target); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(filepath.Dir(s.target), tempPrefix(s.target))
	if err != nil {
		return fmt.Errorf("output %s: %w", s.target, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("output %s: %w", s.target, err)
	}
	s.dir = dir
	return nil
}

// tempPrefix names the temp dirs of an output: .NAME.tmp-RANDOM (and
// .NAME.tmp-RANDOM.old, the earlier output moved aside by commit).
func tempPrefix(abs string) string { return "." + filepath.Base(abs) + ".tmp-" }

// removeStale removes the temp dirs of target's earlier runs. The caller
// holds target's lock, so no live run owns them.
func removeStale(abs string) error {
	entries, err := os.ReadDir(filepath.Dir(abs))
	if err != nil {
		return fmt.Errorf("output %s: %w", abs, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix(abs)) {
			if err := os.RemoveAll(filepath.Join(filepath.Dir(abs), e.Name())); err != nil {
				return fmt.Errorf("output %s: removing an earlier run's temp dir: %w", abs, err)
			}
		}
	}
	return nil
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
		if errors.Is(err, syscall.ENOSPC) { // the error names the temp dir
			return "", fmt.Errorf("output %s: %w", st.target, err)
		}
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
	s.lock.release()
	return nil
}

func (s *stage) abort() {
	os.RemoveAll(s.dir)
	s.lock.release()
}

// abortOnPanic, deferred, keeps a panic from leaving a half-written
// .tmp-* directory behind.
func (s *stage) abortOnPanic() {
	if r := recover(); r != nil {
		s.abort()
		panic(r)
	}
}
