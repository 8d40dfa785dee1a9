package rootfs

import (
	"context"
	"os"
)

// Writer writes a tree as a filesystem image into f, an empty file. Each
// format (rootfs/ext4, rootfs/squashfs) is one implementation.
type Writer interface {
	Write(ctx context.Context, t *Tree, f *os.File) error
}
