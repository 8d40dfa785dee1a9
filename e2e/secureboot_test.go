package e2e

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/vmdir"
)

// Debian's ovmf test set: firmware that enforces Secure Boot (SMM
// required), variables with the snakeoil certificate enrolled in PK, KEK
// and db, and that certificate's key (passphrase "snakeoil").
const (
	secbootCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	snakeoilVar = "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd"
	snakeoilKey = "/usr/share/ovmf/PkKek-1-snakeoil.key"
	snakeoilPEM = "/usr/share/ovmf/PkKek-1-snakeoil.pem"
)

// TestSecureBoot: a disk whose UKI c2vm signed with the snakeoil key
// passes sbverify with no warning and boots under OVMF enforcing Secure
// Boot with that certificate enrolled, through dm-verity (the signed
// .cmdline pins the root hash), to the container's output and status;
// the same firmware refuses the unsigned disk (Access Denied).
func TestSecureBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	fixtures.NeedTools(t, "openssl", "sbverify", "mcopy", "qemu-system-x86_64")
	for _, f := range []string{secbootCode, snakeoilVar, snakeoilKey, snakeoilPEM} {
		if _, err := os.Stat(f); err != nil {
			fixtures.Skip(t, "%s: apt-get install ovmf", f)
		}
	}
	key := filepath.Join(t.TempDir(), "snakeoil.key")
	runTool(t, "", "openssl", "pkcs8", "-in", snakeoilKey, "-passin", "pass:snakeoil", "-out", key)
	signed := convertBusybox(t, "amd64", "--disk", "raw", "--verity", "--efi-stub", efiStub(t, "amd64"),
		"--secure-boot-key", key, "--secure-boot-cert", snakeoilPEM, "--cmd", `["/bin/sh","-c","echo SIGNED-RAN; exit 3"]`)
	m := readManifest(t, signed)
	if m.Disk.SecureBoot == "" {
		t.Errorf("manifest.json's disk names no Secure Boot certificate: %+v", m.Disk)
	}
	uki := extractUKI(t, filepath.Join(signed, m.Disk.File), m.Disk)
	out, err := exec.Command("sbverify", "--cert", snakeoilPEM, uki).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Signature verification OK") || strings.Contains(string(out), "warning") {
		t.Errorf("sbverify --cert %s: %v\n%s", snakeoilPEM, err, out)
	}
	if xml, _ := os.ReadFile(filepath.Join(signed, vmdir.LibvirtDisk)); !strings.Contains(string(xml), `<feature enabled="yes" name="secure-boot">`) {
		t.Errorf("libvirt-disk.xml does not ask for Secure Boot:\n%s", xml)
	}
	console, took := bootUntil(t, "amd64", secureBootArgs(t, signed, m.Disk.File), "SIGNED-RAN")
	t.Logf("Secure Boot of the signed disk to the container's output: %s", took.Round(time.Millisecond))
	if !strings.Contains(console, "verity") {
		t.Errorf("the boot did not go through dm-verity:\n%s", tail(console, 30))
	}
	if got := exitStatus(t, console); got != 3 {
		t.Errorf("exit status %d, want 3", got)
	}

	unsigned := convertBusybox(t, "amd64", "--disk", "raw", "--efi-stub", efiStub(t, "amd64"),
		"--cmd", `["/bin/sh","-c","echo UNSIGNED-RAN; exit 3"]`)
	console = consoleUntil(t, secureBootArgs(t, unsigned, readManifest(t, unsigned).Disk.File), "Access Denied", 5*time.Minute)
	if strings.Contains(console, "UNSIGNED-RAN") || !strings.Contains(console, "Access Denied") {
		t.Errorf("the unsigned disk was not refused:\n%s", tail(console, 20))
	}
}

// secureBootArgs boots a disk on OVMF enforcing Secure Boot with a copy
// of the snakeoil variables.
func secureBootArgs(t *testing.T, dir, disk string) []string {
	vars := filepath.Join(t.TempDir(), "vars.fd")
	b, err := os.ReadFile(snakeoilVar)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vars, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"-machine", "q35,smm=on", "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
		"-global", "driver=cfi.pflash01,property=secure,value=on",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + secbootCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		"-drive", "file=" + filepath.Join(dir, disk) + ",if=virtio,format=raw"}
}

// consoleUntil runs an amd64 QEMU until its console shows marker (then
// stops it) or it exits, and returns the console.
func consoleUntil(t *testing.T, args []string, marker string, limit time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); pw.Close() }()
	var console strings.Builder
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		console.WriteString(strings.TrimRight(sc.Text(), "\r") + "\n")
		if strings.Contains(sc.Text(), marker) {
			cancel()
			break
		}
	}
	go io.Copy(io.Discard, pr)
	return console.String()
}
