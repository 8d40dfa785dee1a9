package rootfs

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrUnsafePath is wrapped by every error about a path that would name a
// location outside the root.
var ErrUnsafePath = errors.New("path escapes the root")

// CleanPath is the one place that decides what a layer's path means: it
// returns name relative to the root ("." for the root itself), or an error
// wrapping ErrUnsafePath when name climbs out with "..". Absolute names are
// taken relative to the root, as tar and containerd do.
func CleanPath(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%q: NUL in name: %w", name, ErrUnsafePath)
	}
	p := strings.TrimLeft(name, "/")
	if p == "" {
		return ".", nil
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			// Clean would silently keep "a/../b" inside, but a tar that
			// says ".." at all is crafted; refuse it whole.
			return "", fmt.Errorf("%q: %w", name, ErrUnsafePath)
		}
	}
	return path.Clean(p), nil
}
