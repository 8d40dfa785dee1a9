package vmconfig

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/bootcfg/plan"
)

// TestQEMUNetworkListens runs the arch's real QEMU, paused before the
// guest starts (-S), with QEMUArgs' network and disks: QEMU takes the
// options on the machine, its user-mode network listens on the published
// host port (slirp binds hostfwd sockets at start-up, `info usernet`
// lists them), and a connection there is accepted. The guest side is the
// boot tests' job.
func TestQEMUNetworkListens(t *testing.T) {
	for _, goarch := range []string{"amd64", "arm64"} {
		t.Run(goarch, func(t *testing.T) {
			a, _ := arch.VM(goarch)
			qemu := needTool(t, a.QEMU.Binary)
			dir := t.TempDir()
			vm := VM{Arch: goarch, Rootfs: "rootfs.img", DataDisks: []string{"data-0.img"},
				Forwards: []plan.Forward{{HostIP: "127.0.0.1", HostPort: freeTCPPort(t), GuestPort: 8080, Proto: "tcp"}}}
			for _, f := range []string{"rootfs.img", "data-0.img"} {
				if err := os.WriteFile(filepath.Join(dir, f), make([]byte, 1<<20), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args, err := QEMUArgs(vm, "tcg", dir+"/", "")
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(qemu, append(withoutBoot(args), "-S", "-display", "none", "-serial", "none", "-monitor", "stdio")...)
			in, _ := cmd.StdinPipe()
			out, _ := cmd.StdoutPipe()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			// The monitor answers only once the machine and its network
			// are set up.
			io.WriteString(in, "info usernet\n")
			port := strconv.Itoa(int(vm.Forwards[0].HostPort))
			lines := bufio.NewScanner(out)
			if waitFor(lines, "HOST_FORWARD") == "" {
				t.Fatalf("no hostfwd listed by info usernet; QEMU stderr: %s", stderr.String())
			}
			c, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err != nil {
				t.Fatalf("the published port is not listening: %v", err)
			}
			c.Close()
			// The data disk is attached writable, the root disk read-only.
			io.WriteString(in, "info block\n")
			if l := waitFor(lines, "rootfs.img"); !strings.Contains(l, "read-only") {
				t.Errorf("root disk: %q", l)
			}
			if l := waitFor(lines, "data-0.img"); l == "" || strings.Contains(l, "read-only") {
				t.Errorf("data disk: %q", l)
			}
			io.WriteString(in, "quit\n")
			if err := cmd.Wait(); err != nil {
				t.Errorf("qemu: %v\n%s", err, stderr.String())
			}
		})
	}
}

// withoutBoot drops what needs a kernel (-kernel, -initrd, -append) and
// -nographic (the monitor takes stdio instead).
func withoutBoot(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-kernel", "-initrd", "-append":
			i++
		case "-nographic":
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// waitFor reads lines until one holds s and returns it; "" when they end.
func waitFor(sc *bufio.Scanner, s string) string {
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			return sc.Text()
		}
	}
	return ""
}

func freeTCPPort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}
