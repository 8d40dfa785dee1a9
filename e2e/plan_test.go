package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/initramfs"
	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/vmdir"
)

// specCheck prints what the runtime spec's restrictions look like from
// inside the container, as root. Each line differs when the init skips
// the spec: /proc/kcore masked is a bind of /dev/null (a mount at that
// path, a character device 1,3; unmasked it is a regular file that root
// cannot read only for want of CAP_SYS_RAWIO, so reading it empty proves
// nothing), /proc/sys read-only, and the spec's RLIMIT_NOFILE hard limit
// of 1024 (the kernel starts init with 1024 soft but 4096 hard,
// INR_OPEN_MAX in include/uapi/linux/fs.h).
const specCheck = `echo "kcore=$(head -c 4 /proc/kcore | wc -c)"
awk '$5=="/proc/kcore" {print "kcore-mount=" $5}' /proc/self/mountinfo
echo "kcore-node=$(stat -c '%F %t,%T' /proc/kcore)"
awk '$5=="/proc/sys" {split($6, o, ","); print "sys-mount=" o[1]}' /proc/self/mountinfo
echo 0 > /proc/sys/vm/overcommit_memory && echo sys-writable
echo "nofile=$(ulimit -Sn)/$(ulimit -Hn)"
`

// specApplied is what specCheck prints when the spec holds.
var specApplied = []string{
	"kcore=0\n", "kcore-mount=/proc/kcore\n", "kcore-node=character special file 1,3\n",
	"sys-mount=ro\n", "Read-only file system", "nofile=1024/1024\n",
}

// TestPlanStepsAreTheBoot: boot.json's steps are what the init does. A
// plan with the hostname step removed and a write step added boots with
// the kernel's default hostname and the new file; `c2vm run --debug`
// prints every step as it runs; and the spec's masked and read-only
// paths and rlimits hold for root in the container.
func TestPlanStepsAreTheBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	fixtures.NeedTools(t, "qemu-system-x86_64")
	dir := convertBusybox(t, "amd64", "--user", "0:0", "--cmd", shellCmd("cat /etc/added-by-a-step; echo host=$(hostname)\n"+specCheck))
	p := readPlan(t, dir)
	var steps []plan.Step
	for _, s := range p.Steps {
		switch s.Action.(type) {
		case *plan.Hostname:
			continue // removed
		case *plan.Run:
			steps = append(steps, plan.Step{Action: &plan.WriteFile{Path: "/etc/added-by-a-step", Data: "written by an added step\n", Mode: 0o644}})
		}
		steps = append(steps, s)
	}
	p.Steps = steps
	appendPlan(t, dir, p)

	stdout, stderr, code := runVM(t, "--debug", dir)
	if code != 0 {
		t.Fatalf("exit %d; stderr %s\nstdout %s", code, stderr, tail(stdout, 30))
	}
	for _, want := range append([]string{
		"c2vm-init: step 1/", "switch root to /newroot", "write /etc/added-by-a-step", // --debug shows the steps
		"written by an added step\n", "host=(none)\n", // the plan's edits took effect
	}, specApplied...) {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, tail(stdout, 40))
		}
	}
	if strings.Contains(stdout, "set hostname c2vm") || strings.Contains(stdout, "\nsys-writable\n") {
		t.Errorf("a removed step ran, or /proc/sys was writable:\n%s", tail(stdout, 40))
	}
}

// TestSpecAppliedArm64: the masked and read-only paths on the other arch,
// with the plan as converted.
func TestSpecAppliedArm64(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	fixtures.NeedTools(t, "qemu-system-aarch64")
	dir := convertBusybox(t, "arm64", "--user", "0", "--cmd", shellCmd(specCheck))
	stdout, stderr, code := runVM(t, dir)
	if code != 0 {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	for _, want := range specApplied {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

// shellCmd is a --cmd value running script with /bin/sh.
func shellCmd(script string) string {
	b, _ := json.Marshal([]string{"/bin/sh", "-c", script})
	return string(b)
}

func readPlan(t *testing.T, dir string) *plan.Plan {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "boot.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := plan.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// appendPlan appends an uncompressed cpio holding p as the boot plan to
// the VM's initramfs: the kernel unpacks concatenated archives in order,
// later files replacing earlier ones (init/initramfs.c), skipping the
// zero padding that aligns each archive to 4 bytes.
func appendPlan(t *testing.T, dir string, p *plan.Plan) {
	t.Helper()
	var js, cpio bytes.Buffer
	if err := p.Write(&js); err != nil {
		t.Fatal(err)
	}
	files := []initramfs.File{{Path: strings.TrimPrefix(plan.Path, "/"), Mode: 0o644, Data: js.Bytes()}}
	if err := initramfs.Write(&cpio, files, initramfs.Options{Compression: initramfs.None}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "initramfs.img"), os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	pad := make([]byte, (4-fi.Size()%4)%4)
	if _, err := f.Write(append(pad, cpio.Bytes()...)); err != nil {
		t.Fatal(err)
	}
	rerecord(t, dir, vmdir.Initramfs)
}

// rerecord records artifact name's new size and sha256 in dir's
// manifest.json, as whoever edits a VM directory by hand must: c2vm run
// refuses an artifact that is not what the manifest says. Every other
// field is kept as it was.
func rerecord(t *testing.T, dir, name string) {
	t.Helper()
	a, err := vmdir.DigestFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(dir, vmdir.ManifestFile)
	b, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	arts, ok := m["artifacts"].(map[string]any)
	if !ok || arts[name] == nil {
		t.Fatalf("%s lists no artifact %s", mp, name)
	}
	arts[name] = a
	if err := vmdir.WriteJSON(mp, m); err != nil {
		t.Fatal(err)
	}
}
