package convert

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c2vm/c2vm/vmdir"
)

// TestEachPlatformAtOnce: with two jobs, two platforms run at the same
// time (each waits for the other to have started; one after the other,
// the first would give up); with one job, they never overlap and start
// in order.
func TestEachPlatformAtOnce(t *testing.T) {
	started := []chan struct{}{make(chan struct{}), make(chan struct{})}
	err := eachPlatform(context.Background(), func() {}, 2, 2, func(k int) error {
		close(started[k])
		select {
		case <-started[1-k]:
			return nil
		case <-time.After(time.Minute): // never reached when they overlap
			return errors.New("ran alone")
		}
	})
	if err != nil {
		t.Fatalf("two jobs: %v", err)
	}

	var mu sync.Mutex
	var order []int
	running := 0
	err = eachPlatform(context.Background(), func() {}, 1, 4, func(k int) error {
		mu.Lock()
		running++
		order = append(order, k)
		overlap := running > 1
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		if overlap {
			return errors.New("two ran at once")
		}
		return nil
	})
	if err != nil || !slices.Equal(order, []int{0, 1, 2, 3}) {
		t.Errorf("one job: %v, order %v", err, order)
	}
}

// TestEachPlatformFirstError: the first failure cancels the platforms
// running beside it and is the error returned (not their
// context.Canceled); the platforms not started yet never start.
func TestEachPlatformFirstError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	boom := errors.New("boom")
	var mu sync.Mutex
	var ran []int
	err := eachPlatform(ctx, cancel, 2, 5, func(k int) error {
		mu.Lock()
		ran = append(ran, k)
		mu.Unlock()
		if k == 1 {
			return boom
		}
		<-ctx.Done() // platform 0 runs until cancelled
		return ctx.Err()
	})
	if !errors.Is(err, boom) {
		t.Errorf("got %v, want boom", err)
	}
	slices.Sort(ran)
	if !slices.Equal(ran, []int{0, 1}) {
		t.Errorf("ran %v, want [0 1]: nothing starts after a failure", ran)
	}
}

// TestEachPlatformPanic: a panic in a platform's goroutine is raised in
// the caller's, where build removes the temp dir.
func TestEachPlatformPanic(t *testing.T) {
	defer func() {
		if r := recover(); r != "bad" {
			t.Errorf("recovered %v, want the platform's panic", r)
		}
	}()
	eachPlatform(context.Background(), func() {}, 2, 2, func(k int) error {
		if k == 1 {
			panic("bad")
		}
		return nil
	})
	t.Error("no panic")
}

// TestSharedOutput: platforms converted at once write whole progress
// lines (a terminal's meter line erased first), and only one live
// meter shows at a time.
func TestSharedOutput(t *testing.T) {
	var buf bytes.Buffer
	var shown []string
	meter := func(what string, total int64) io.WriteCloser {
		shown = append(shown, what)
		return discardMeter{}
	}
	o := Options{Progress: &buf, Meter: meter}.shared(2)
	a, b := o.Meter("a", 1), o.Meter("b", 1)
	a.Close()
	c := o.Meter("c", 1)
	b.Close()
	c.Close()
	if !slices.Equal(shown, []string{"a", "c"}) {
		t.Errorf("meters shown %v, want a and c (b started while a ran)", shown)
	}
	o.progress("x")
	if buf.String() != "\r\033[Kc2vm: x\n" {
		t.Errorf("progress %q", buf.String())
	}
	if one := (Options{Progress: &buf}).shared(1); one.Progress != &buf {
		t.Error("one job: the progress writer was wrapped")
	}
}

// TestConvertAllJobs: the platforms converted at once (Jobs 2) give the
// same bytes as one after the other (Jobs 1), with every progress line
// whole and naming its platform; a corrupt arm64 layer fails the run
// either way (TestConvertAllAtomic checks what is left).
func TestConvertAllJobs(t *testing.T) {
	dir, _ := multiLayout(t)
	out := map[int]string{}
	for _, jobs := range []int{1, 2} {
		out[jobs] = filepath.Join(t.TempDir(), "all.vm")
		var progress bytes.Buffer
		_, err := ConvertAll(context.Background(), Options{Image: "oci:" + dir, NoKernel: true, Output: out[jobs], Jobs: jobs, Progress: &progress}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(progress.String(), "\n"), "\n") {
			if !strings.HasPrefix(l, "c2vm: linux/amd64: ") && !strings.HasPrefix(l, "c2vm: linux/arm64: ") && !strings.HasPrefix(l, "c2vm: image: ") && !strings.HasPrefix(l, "c2vm: done: ") {
				t.Errorf("jobs %d: progress line %q", jobs, l)
			}
		}
	}
	for _, sub := range []string{"linux-amd64", "linux-arm64"} {
		sameDirs(t, filepath.Join(out[1], sub), filepath.Join(out[2], sub))
	}
	a, _ := os.ReadFile(filepath.Join(out[1], vmdir.ManifestFile))
	b, err := os.ReadFile(filepath.Join(out[2], vmdir.ManifestFile))
	if err != nil || !bytes.Equal(a, b) {
		t.Errorf("the top manifest.json differs (%v):\n%s\n%s", err, a, b)
	}
}
