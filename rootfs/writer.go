package rootfs

import (
	"context"
	"errors"
	"os"
)

// ErrShortFile is a writer's error when a file's Content ends before its
// Size: every format refuses to pad it silently.
var ErrShortFile = errors.New("file content shorter than its size")

// Writer writes a tree as a filesystem image into f, an empty file. Each
// format (rootfs/ext4, rootfs/squashfs) is one implementation.
type Writer interface {
	Write(ctx context.Context, t *Tree, f *os.File) error
}
