package image

import "errors"

// Errors a caller may test with errors.Is. Messages wrapping them name the
// image, blob or platform concerned.
var (
	ErrNotImage       = errors.New("not an image")
	ErrDigestMismatch = errors.New("digest mismatch")
	ErrMissingBlob    = errors.New("missing blob")
	ErrNoPlatform     = errors.New("no matching platform")
	ErrAmbiguous      = errors.New("ambiguous image")
	ErrCorrupt        = errors.New("corrupt data")
	ErrUnsupported    = errors.New("unsupported")
	ErrNoSuchImage    = errors.New("no such image")
	ErrNotRegular     = errors.New("not a regular file")
	ErrTooLarge       = errors.New("too large")
)
