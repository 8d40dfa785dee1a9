package image

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
)

// spool is one registry blob's download into an unnamed temp file, made
// once however many opens (of however many platforms converted at once)
// ask for it, and read as it grows: a follower reads the bytes written so
// far (below high) and waits for more, so a layer is decoded while it
// downloads. done is closed when the download ended, err its verdict
// (the digest check go-containerregistry makes at the body's end, the
// size cut-off, a stall).
type spool struct {
	d    digest.Digest
	mu   sync.Mutex
	grew *sync.Cond // broadcast when high grows or the download ends
	f    *os.File
	high int64 // bytes of f written so far
	end  bool
	err  error
	done chan struct{}
}

func newSpool(d digest.Digest, f *os.File) *spool {
	sp := &spool{d: d, f: f, done: make(chan struct{})}
	sp.grew = sync.NewCond(&sp.mu)
	return sp
}

// finish records the download's verdict; n is the length of the try that
// succeeded.
func (sp *spool) finish(n int64, err error) {
	sp.mu.Lock()
	if err == nil && n < sp.high { // a re-fetch shorter than a broken try: never verified past n
		if terr := sp.f.Truncate(n); terr != nil {
			err = fmt.Errorf("spooling blob %s: %w", sp.d, terr)
		}
		sp.high = n
	}
	sp.end, sp.err = true, err
	sp.grew.Broadcast()
	sp.mu.Unlock()
	close(sp.done)
}

// verdict waits for the download to end and returns its error.
func (sp *spool) verdict() error {
	<-sp.done
	return sp.err
}

// spoolWriter writes one try of a download into its spool from byte 0.
// Below the high-water mark of an earlier, broken try, followers may
// already have read the bytes: a re-fetch must repeat them (a blob is
// content addressed), or it fails as a digest mismatch, since the bytes
// handed out would not be the ones its digest check covers.
type spoolWriter struct {
	sp  *spool
	off int64
	old []byte
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	sp := w.sp
	sp.mu.Lock()
	high := sp.high
	sp.mu.Unlock()
	n := 0
	if w.off < high {
		k := int(min(int64(len(p)), high-w.off))
		if cap(w.old) < k {
			w.old = make([]byte, k)
		}
		if _, err := sp.f.ReadAt(w.old[:k], w.off); err != nil {
			return 0, fmt.Errorf("spooling blob %s: %w", sp.d, err)
		}
		if !bytes.Equal(w.old[:k], p[:k]) {
			return 0, fmt.Errorf("a re-fetch differs from the bytes fetched before: %w", ErrDigestMismatch)
		}
		w.off += int64(k)
		n = k
	}
	if n == len(p) {
		return n, nil
	}
	m, err := sp.f.WriteAt(p[n:], w.off)
	w.off += int64(m)
	sp.mu.Lock()
	sp.high = max(sp.high, w.off)
	sp.grew.Broadcast()
	sp.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("spooling blob %s: %w", sp.d, err)
	}
	return n + m, err
}

// follower reads a spool from its start as it grows. It returns the
// download's error, not io.EOF, at the end (and as soon as the download
// fails), so a reader that reaches the end of the blob knows it matched
// its digest.
type follower struct {
	sp  *spool
	off int64
}

func (r *follower) Read(p []byte) (int, error) {
	sp := r.sp
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for r.off >= sp.high && !sp.end {
		sp.grew.Wait()
	}
	if sp.err != nil {
		return 0, sp.err
	}
	if r.off >= sp.high {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := sp.f.ReadAt(p[:min(int64(len(p)), sp.high-r.off)], r.off)
	r.off += int64(n)
	if n > 0 {
		err = nil
	} else if err == io.EOF {
		err = io.ErrUnexpectedEOF // the file is shorter than what was written
	}
	return n, err
}

func (r *follower) Close() error { return nil }

// checkedBlob is a store's reader of a blob it checks against its digest
// as it downloads: its Read at the end gives the check's error instead of
// io.EOF, and verdict waits for the check. Layer.Open does not hash such
// a blob again, and reports the check's error before any decoding error.
type checkedBlob interface {
	blobDigest() digest.Digest
	verdict() error
}

func (r *follower) blobDigest() digest.Digest { return r.sp.d }
func (r *follower) verdict() error            { return r.sp.verdict() }
