package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// runManifest runs a fake QEMU that prints its arguments in a VM
// directory with the given manifest.json.
func runManifest(t *testing.T, manifest string, o Options) portsResult {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "qemu-ran")
	o.Dir, o.QEMU = vmDir(t, "amd64", `touch `+marker+`; for a; do echo "$a"; done; echo C2VM_EXIT_STATUS=0`)
	if err := os.WriteFile(filepath.Join(o.Dir, "manifest.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	o.Accel = "tcg"
	var stdout, stderr bytes.Buffer
	o.Stdout, o.Stderr = &stdout, &stderr
	code, err := Run(context.Background(), o)
	if _, serr := os.Stat(marker); err != nil && serr == nil {
		t.Errorf("QEMU ran although Run failed: %v", err)
	}
	return portsResult{result{code, err, stdout.String(), stderr.String()}, o.Dir}
}

type portsResult struct {
	result
	dir string
}

func forward(t *testing.T, s string) plan.Forward {
	t.Helper()
	f, err := plan.ParseForward(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRunForwards: the converted forwards reach QEMU unless -p replaces
// one or --no-publish drops them; -P adds every EXPOSEd port; data disks
// follow the root disk.
func TestRunForwards(t *testing.T) {
	// Free host ports, so that the check before QEMU passes.
	a, b, c, d := freePort(t, "tcp"), freePort(t, "udp"), freePort(t, "tcp"), freePort(t, "tcp")
	manifest := fmt.Sprintf(`{"artifacts":{},"vmArch":"amd64","kernel":{"version":"6.1.0"},
		"exposed":[{"port":%[1]s,"proto":"tcp"},{"port":%[2]s,"proto":"udp"}],
		"forwards":[{"hostIP":"127.0.0.1","hostPort":%[1]s,"guestPort":%[1]s,"proto":"tcp"}],
		"dataDisks":["data-0.img"]}`, a, b)
	for _, tc := range []struct {
		name   string
		o      Options
		netdev string
	}{
		{"as converted", Options{}, "user,id=net0,hostfwd=tcp:127.0.0.1:" + a + "-:" + a},
		{"-p replaces", Options{Publish: []plan.Forward{forward(t, c+":"+a)}}, "user,id=net0,hostfwd=tcp:127.0.0.1:" + c + "-:" + a},
		{"-p adds", Options{Publish: []plan.Forward{forward(t, d+":22")}},
			"user,id=net0,hostfwd=tcp:127.0.0.1:" + a + "-:" + a + ",hostfwd=tcp:127.0.0.1:" + d + "-:22"},
		{"--no-publish", Options{NoPublish: true}, "user,id=net0"},
		{"-P", Options{NoPublish: true, PublishAll: true},
			"user,id=net0,hostfwd=tcp:127.0.0.1:" + a + "-:" + a + ",hostfwd=udp:127.0.0.1:" + b + "-:" + b},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runManifest(t, manifest, tc.o)
			if r.code != 0 || r.err != nil {
				t.Fatalf("Run = %d, %v", r.code, r.err)
			}
			for _, want := range []string{"-netdev\n" + tc.netdev + "\n", "-device\nvirtio-net-pci,netdev=net0\n",
				"/rootfs.img,if=virtio,format=raw,readonly=on\n-drive\nfile=" + filepath.Join(r.dir, "data-0.img") + ",if=virtio,format=raw\n"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("QEMU args lack %q:\n%s", want, r.stdout)
				}
			}
		})
	}
}

// freePort is a port nothing listens on now (the kernel's choice).
func freePort(t *testing.T, proto string) string {
	t.Helper()
	var addr net.Addr
	if proto == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		addr = c.LocalAddr()
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addr = l.Addr()
	}
	_, port, _ := net.SplitHostPort(addr.String())
	return port
}

// TestRunPortInUse: a published host port something listens on fails
// the run before QEMU starts, naming the port.
func TestRunPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	tcpPort := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	udpPort := strconv.Itoa(u.LocalAddr().(*net.UDPAddr).Port)
	for _, tc := range []struct{ spec, port string }{
		{tcpPort + ":80", "127.0.0.1:" + tcpPort + "/tcp"},
		{udpPort + ":53/udp", "127.0.0.1:" + udpPort + "/udp"},
		{"0.0.0.0:" + tcpPort + ":80", "0.0.0.0:" + tcpPort + "/tcp"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			r := runManifest(t, `{"artifacts":{},"vmArch":"amd64","kernel":{"version":"6.1.0"}}`, Options{Publish: []plan.Forward{forward(t, tc.spec)}})
			if !errors.Is(r.err, ErrPortInUse) || !strings.Contains(r.err.Error(), tc.port) || r.code == 0 {
				t.Errorf("Run = %d, %v; want ErrPortInUse naming %s", r.code, r.err, tc.port)
			}
		})
	}
}

// TestRunBadManifestForwards: forwards read from manifest.json are
// checked like -p before they reach QEMU.
func TestRunBadManifestForwards(t *testing.T) {
	for _, bad := range []string{
		`{"hostIP":"127.0.0.1,hostfwd=tcp::22-:22","hostPort":1,"guestPort":1,"proto":"tcp"}`,
		`{"hostIP":"127.0.0.1","hostPort":1,"guestPort":1,"proto":"tcp;reboot"}`,
		`{"hostIP":"127.0.0.1","hostPort":0,"guestPort":1,"proto":"tcp"}`,
	} {
		t.Run(bad, func(t *testing.T) {
			r := runManifest(t, `{"artifacts":{},"vmArch":"amd64","kernel":{"version":"6.1.0"},"forwards":[`+bad+`]}`, Options{})
			if r.err == nil {
				t.Errorf("Run accepted forward %s", bad)
			}
		})
	}
}
