package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrShortFile is a writer's error when a file's Content ends before its
// Size: every format refuses to pad it silently.
var ErrShortFile = errors.New("file content shorter than its size")

// ReadContent fills b from a file's content r, as writers read it: an
// early end is ErrShortFile, any other error the read's.
func ReadContent(r io.Reader, b []byte) error {
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrShortFile
		}
		return fmt.Errorf("reading file: %w", err)
	}
	return nil
}

// Writer writes a tree as a filesystem image into f, an empty file. Each
// format (rootfs/ext4, rootfs/squashfs) is one implementation.
type Writer interface {
	Write(ctx context.Context, t *Tree, f *os.File) error
}
