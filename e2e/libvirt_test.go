package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// TestLibvirtBoot defines and starts the generated libvirt.xml in a real
// libvirtd (qemu:///system) and reads the container's output. The one
// change to the domain is where its serial console goes: a log file
// instead of a pty, so no terminal is needed. It runs when libvirtd
// answers (under C2VM_E2E=1 its absence is a failure). CI runs it with
// both setups of scripts/libvirt-setup.sh: QEMU as root, and Debian's
// stock libvirtd, whose QEMU runs as libvirt-qemu and must be able to
// reach the output directory.
func TestLibvirtBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	needLibvirt(t)
	dir := convertBusybox(t, "amd64", "--cmd", `["/bin/sh","-c","echo hello from libvirt; exit 7"]`)
	defineDomain(t, dir).run(3*time.Minute, "hello from libvirt", 7)
}

// run starts the domain, waits up to bound for it to shut off, and checks
// that its console shows want and the exit status.
func (d *domain) run(bound time.Duration, want string, status int) {
	d.t.Helper()
	d.virsh("start", d.name)
	console := d.waitOff(bound)
	if !strings.Contains(console, want) {
		d.t.Errorf("console lacks the container's output %q:\n%s", want, tail(console, 30))
	}
	if got := exitStatus(d.t, console); got != status {
		d.t.Errorf("exit status %d, want %d", got, status)
	}
}

// needLibvirt skips without a libvirtd on qemu:///system, or fails under
// C2VM_E2E=1, as for a missing tool.
func needLibvirt(t *testing.T) {
	t.Helper()
	fixtures.NeedTools(t, "virsh")
	if exec.Command("virsh", "-c", "qemu:///system", "version").Run() != nil {
		fixtures.Skip(t, "no libvirtd answers on qemu:///system (scripts/libvirt-setup.sh starts one)")
	}
}

// domain is a defined libvirt domain of a converted VM.
type domain struct {
	t       *testing.T
	name    string
	logPath string
}

// defineDomain defines dir's libvirt.xml with one change: the serial
// console goes to a log file instead of a pty, so no terminal is needed.
// The domain is destroyed and undefined when the test ends.
func defineDomain(t *testing.T, dir string) *domain {
	t.Helper()
	return defineDomainFile(t, dir, "libvirt.xml")
}

// defineDomainFile is defineDomain for another of dir's domain files.
func defineDomainFile(t *testing.T, dir, file string) *domain {
	t.Helper()
	openToQEMU(t, dir)
	xmlBytes, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	d := &domain{t: t, logPath: filepath.Join(dir, "console.log"),
		// The test's temp root (TestLibvirtBoot123456) is unique on this
		// host, so tests of several checkouts can share one libvirtd.
		name: "c2vm-e2e-" + filepath.Base(filepath.Dir(filepath.Dir(dir)))}
	doc := string(xmlBytes)
	doc = strings.Replace(doc, "<name>"+between(doc, "<name>", "</name>")+"</name>", "<name>"+d.name+"</name>", 1)
	doc = strings.Replace(doc, `<serial type="pty">`, `<serial type="file"><source path="`+d.logPath+`"></source>`, 1)
	doc = strings.Replace(doc, `<console type="pty">`, `<console type="file"><source path="`+d.logPath+`"></source>`, 1)
	domXML := filepath.Join(dir, "domain.xml")
	if err := os.WriteFile(domXML, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	d.virsh("define", domXML)
	t.Cleanup(func() {
		exec.Command("virsh", "-c", "qemu:///system", "destroy", d.name).Run()
		// --nvram: a UEFI domain (libvirt-disk.xml) has an NVRAM file,
		// and undefine refuses to leave it behind.
		exec.Command("virsh", "-c", "qemu:///system", "undefine", "--nvram", d.name).Run()
	})
	return d
}

func (d *domain) virsh(args ...string) string {
	d.t.Helper()
	out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput()
	if err != nil {
		d.t.Fatalf("virsh %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (d *domain) console() string {
	b, _ := os.ReadFile(d.logPath)
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// waitOff waits for the domain to shut off and returns its console.
func (d *domain) waitOff(bound time.Duration) string {
	d.t.Helper()
	deadline := time.Now().Add(bound)
	for !strings.Contains(d.virsh("domstate", d.name), "shut off") {
		if time.Now().After(deadline) {
			d.t.Fatalf("domain still running after %s; console:\n%s", bound, tail(d.console(), 30))
		}
		time.Sleep(500 * time.Millisecond)
	}
	return d.console()
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return s
}

// openToQEMU lets a QEMU that libvirt runs as its own user (Debian's
// stock qemu.conf: libvirt-qemu) reach the converted VM in dir. The
// directories the test made are opened to others (t.TempDir's root is
// 0700) and the artifacts made readable; the directories above the temp
// root are not the test's to change, so it only checks that they can be
// traversed and says what to do when not. The README ("libvirt") states
// the same rule for users.
func openToQEMU(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := addPerm(filepath.Join(dir, e.Name()), 0o044); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Clean(os.TempDir())
	for d := dir; ; d = filepath.Dir(d) {
		if strings.HasPrefix(d, tmp+string(filepath.Separator)) {
			if err := addPerm(d, 0o055); err != nil {
				t.Fatal(err)
			}
			continue
		}
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			t.Fatalf("%s (mode %v) cannot be traversed by libvirt's QEMU user; run the tests with TMPDIR under a directory others can traverse, e.g. TMPDIR=/tmp", d, fi.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return
		}
	}
}

// addPerm adds permission bits to p's mode.
func addPerm(p string, bits os.FileMode) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	return os.Chmod(p, fi.Mode().Perm()|bits)
}
