// Command c2vm-init is the guest's PID 1: it runs the boot plan c2vm put
// into the initramfs and then the container. See package guest.
package main

import "github.com/c2vm/c2vm/guest"

func main() { guest.Main() }
