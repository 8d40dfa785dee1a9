//go:build !linux

package guest

import (
	"fmt"
	"os"
)

// Main is PID 1 on Linux; elsewhere it says so.
func Main() {
	fmt.Fprintln(os.Stderr, "c2vm-init runs only as PID 1 of a Linux VM")
	os.Exit(1)
}
