package guest

import (
	"testing"
	"unsafe"
)

// TestGPIOLineRequestLayout pins the struct to the kernel's
// struct gpio_v2_line_request (592 bytes, fd at 588).
func TestGPIOLineRequestLayout(t *testing.T) {
	var r gpioV2LineRequest
	if got := unsafe.Sizeof(r); got != 592 {
		t.Errorf("size %d, want 592", got)
	}
	if got := unsafe.Offsetof(r.Fd); got != 588 {
		t.Errorf("fd at %d, want 588", got)
	}
	if got := unsafe.Offsetof(r.NumLines); got != 560 {
		t.Errorf("num_lines at %d, want 560", got)
	}
}
