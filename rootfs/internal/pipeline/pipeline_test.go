package pipeline

import (
	"context"
	"errors"
	"io"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// upper encodes a block as its bytes in upper case, yielding now and then
// so that workers finish out of order.
type upper struct{}

func (upper) Encode(b *Block[int]) error {
	if b.Tag%3 == 0 {
		runtime.Gosched()
	}
	if string(b.In) == "bad" {
		return errors.New("cannot encode bad")
	}
	for _, c := range b.In {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b.Out = append(b.Out, c)
	}
	return nil
}

func newUpper() (Encoder[int], error) { return upper{}, nil }

// feed puts each word as one block tagged with its index.
func feed(words []string, err error) func(*Queue[int]) error {
	return func(q *Queue[int]) error {
		for i, w := range words {
			b, gerr := q.Get(len(w))
			if gerr != nil {
				return gerr
			}
			b.Tag = i
			copy(b.In, w)
			if perr := q.Put(b); perr != nil {
				return perr
			}
		}
		return err
	}
}

// drain takes every block and returns the outputs and the error that
// ended them.
func drain(t *testing.T, p *Pipeline[int]) ([]string, error) {
	t.Helper()
	var got []string
	for {
		b, err := p.Next()
		if err != nil {
			return got, err
		}
		if b.Tag != len(got) {
			t.Fatalf("block %d arrived as the %dth", b.Tag, len(got))
		}
		got = append(got, string(b.Out))
		p.Release(b)
	}
}

func TestOrder(t *testing.T) {
	var words []string
	for i := range 500 {
		words = append(words, "w"+strconv.Itoa(i))
	}
	p, err := Start(context.Background(), Options{Workers: 4, InSize: 8, OutSize: 8}, newUpper, feed(words, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	got, err := drain(t, p)
	if err != io.EOF || len(got) != len(words) {
		t.Fatalf("%d blocks, then %v; want %d, then io.EOF", len(got), err, len(words))
	}
	for i, g := range got {
		if g != "W"+strconv.Itoa(i) {
			t.Fatalf("block %d = %q", i, g)
		}
	}
}

// TestErrors: the reader's and an encoder's errors arrive in their turn,
// after every block before them.
func TestErrors(t *testing.T) {
	short := errors.New("file too short")
	for _, tc := range []struct {
		name  string
		words []string
		err   error
		want  string
		n     int
	}{
		{"reader", []string{"a", "b", "c"}, short, "file too short", 3},
		{"encoder", []string{"a", "b", "bad", "c"}, nil, "cannot encode bad", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Start(context.Background(), Options{Workers: 2, InSize: 4, OutSize: 4}, newUpper, feed(tc.words, tc.err))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
			got, err := drain(t, p)
			if len(got) != tc.n || err == nil || err.Error() != tc.want {
				t.Errorf("%d blocks, then %v; want %d, then %q", len(got), err, tc.n, tc.want)
			}
		})
	}
}

// TestBounded: the reader waits once every block is in flight, and a
// cancelled context ends the wait.
func TestBounded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan int)
	read := func(q *Queue[int]) error {
		for n := 0; ; n++ {
			b, err := q.Get(1)
			if err != nil {
				got <- n
				return err
			}
			if err := q.Put(b); err != nil {
				got <- n + 1
				return err
			}
			if n == 100 {
				cancel()
			}
		}
	}
	p, err := Start(ctx, Options{Workers: 2, InSize: 1, OutSize: 1}, newUpper, read)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody takes a block: 2×2+1 are in flight, then Get waits until
	// the cancel (or, when it does not wait, the reader's own at 100).
	time.AfterFunc(100*time.Millisecond, cancel)
	if n := <-got; n != 5 {
		t.Errorf("the reader got %d blocks with none released, want 5", n)
	}
	// The blocks in flight are still delivered, then the cancel.
	for range 5 {
		if _, err := p.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel: %v, want context.Canceled", err)
	}
	p.Stop()
}
