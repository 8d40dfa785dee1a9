package state

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLogRotates: past its size the log moves to .1 (dropping the
// older .1), so it stays bounded, and TailLog reads across both.
func TestLogRotates(t *testing.T) {
	p := filepath.Join(t.TempDir(), ConsoleLog)
	l, err := OpenLog(p, 100)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for i := range 50 {
		line := fmt.Sprintf("line %02d\n", i) // 8 bytes
		all.WriteString(line)
		if _, err := l.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	for _, f := range []string{p, p + ".1"} {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 100 {
			t.Errorf("%s: %v, size over 100", f, err)
		}
	}
	got, _, err := TailLog(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(all.String(), string(got)) || len(got) < 100 || len(got) > 200 {
		t.Errorf("kept %d bytes, not the end of what was written: %q", len(got), got)
	}
	if got, _, _ := TailLog(p, 3); string(got) != "line 47\nline 48\nline 49\n" {
		t.Errorf("tail 3: %q", got)
	}
}

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\n", 5, "a\nb\n"},
		{"a\nb\n", -1, "a\nb\n"},
		{"a\nb\n", 0, ""},
		{"", 3, ""},
	} {
		if got := string(lastLines([]byte(tc.in), tc.n)); got != tc.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestFollowLog: follow sees what is written after its start, across a
// rotation, and what is left once the writer ends.
func TestFollowLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), ConsoleLog)
	l, err := OpenLog(p, 128)
	if err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("before\n"))
	_, off, _ := TailLog(p, -1)
	var ended atomic.Bool
	var out bytes.Buffer
	done := make(chan error)
	go func() { done <- FollowLog(context.Background(), p, off, &out, ended.Load) }()
	var want strings.Builder
	for i := range 20 {
		line := fmt.Sprintf("after %02d\n", i)
		want.WriteString(line)
		l.Write([]byte(line))
		time.Sleep(30 * time.Millisecond)
	}
	ended.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out.String() != want.String() {
		t.Errorf("followed %q, want %q", out.String(), want.String())
	}
}
