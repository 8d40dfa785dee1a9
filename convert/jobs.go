package convert

import (
	"context"
	"io"
	"runtime"
	"slices"
	"sync"
)

// jobs is how many of n platforms ConvertAll converts at once: o.Jobs,
// else GOMAXPROCS, never more than n. Measured on 2 cores (busybox-multi
// with Debian's cloud kernels, amd64 + arm64): the kernel stage (a .deb's
// xz, the module closure) runs on one core, so two at once take ~0.6× the
// wall time of one after the other; the squashfs writer already uses
// every core, so a big root gains less.
func (o Options) jobs(n int) int {
	j := o.Jobs
	if j <= 0 {
		j = runtime.GOMAXPROCS(0)
	}
	return max(1, min(j, n))
}

// shared is o for platforms converted jobs at a time: one writer for the
// progress lines, whole lines each, and one live meter at a time (two
// bars on one terminal line would overwrite each other).
func (o Options) shared(jobs int) Options {
	if jobs < 2 {
		return o
	}
	if o.Progress != nil {
		l := &lineWriter{w: o.Progress}
		if o.Meter != nil {
			l.prefix = []byte("\r\033[K")
		}
		o.Progress = l
	}
	o.Meter = oneMeter(o.Meter)
	return o
}

// eachPlatform runs do(0), ..., do(n-1), up to jobs at once, started in
// that order. The first error cancels the others (through cancel, the
// ctx they run under) and is the one returned; nothing new starts after
// it. A panic in do is raised again in the caller once all have ended,
// so build's abortOnPanic still removes the temp dir.
func eachPlatform(ctx context.Context, cancel context.CancelFunc, jobs, n int, do func(k int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		pan   any
	)
	fail := func(err error, p any) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil && pan == nil {
			first, pan = err, p
			cancel()
		}
	}
	sem := make(chan struct{}, jobs)
	for k := 0; k < n; k++ {
		sem <- struct{}{}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					fail(nil, p)
				}
				<-sem
				wg.Done()
			}()
			if err := do(k); err != nil {
				fail(err, nil)
			}
		}()
	}
	wg.Wait()
	if pan != nil {
		panic(pan)
	}
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// lineWriter serialises the progress lines of platforms converted at
// once: each line is one Write (Options.progress), written whole. On a
// terminal, prefix ("\r\033[K") first erases a live meter's line, which
// the meter draws again on its next update.
type lineWriter struct {
	sync.Mutex
	w      io.Writer
	prefix []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	line := append(slices.Clip(l.prefix), p...)
	l.Lock()
	_, err := l.w.Write(line)
	l.Unlock()
	return len(p), err
}

// oneMeter shows one display of m at a time: a display started while
// another runs is not shown (the stage lines still say what happens).
func oneMeter(m Meter) Meter {
	if m == nil {
		return nil
	}
	var mu sync.Mutex
	busy := false
	return func(what string, total int64) io.WriteCloser {
		mu.Lock()
		defer mu.Unlock()
		if busy {
			return discardMeter{}
		}
		busy = true
		return &meterDone{WriteCloser: m(what, total), done: func() {
			mu.Lock()
			busy = false
			mu.Unlock()
		}}
	}
}

type discardMeter struct{}

func (discardMeter) Write(p []byte) (int, error) { return len(p), nil }
func (discardMeter) Close() error                { return nil }

// meterDone calls done once, when its display is closed.
type meterDone struct {
	io.WriteCloser
	once sync.Once
	done func()
}

func (m *meterDone) Close() error {
	err := m.WriteCloser.Close()
	m.once.Do(m.done)
	return err
}
