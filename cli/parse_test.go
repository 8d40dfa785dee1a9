package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/convert"
	"github.com/c2vm/c2vm/image"
	"github.com/c2vm/c2vm/launch"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// errParsed stops a command once its options are built: nothing converts
// or boots.
var errParsed = errors.New("parsed")

// parsed runs a command line through the whole CLI (normalising, cobra,
// the options functions) and returns what convert, run or inspect would
// have been given.
type parsed struct {
	convert *convert.Options
	launch  *launch.Options
	ref     string
	image   *image.Options
}

func parse(t *testing.T, args ...string) (parsed, error) {
	t.Helper()
	var p parsed
	a := &app{
		stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{},
		convert: func(_ context.Context, o convert.Options) (*convert.Result, error) {
			o.Progress = nil // the stderr buffer, checked by the quiet case
			p.convert = &o
			return nil, errParsed
		},
		launch: func(_ context.Context, o launch.Options) (int, error) {
			o.Stdout, o.Stderr = nil, nil
			p.launch = &o
			return 0, errParsed
		},
		open: func(_ context.Context, ref string, o image.Options) (*image.Image, error) {
			p.ref, p.image = ref, &o
			return nil, errParsed
		},
	}
	err := a.run(context.Background(), args)
	if errors.Is(err, errParsed) {
		err = nil
	}
	return p, err
}

// wantParsed checks that args parse, and to want for the command that
// got reads.
func wantParsed[T any](t *testing.T, args []string, got func(parsed) *T, want T) {
	t.Helper()
	p, err := parse(t, args...)
	if err != nil || got(p) == nil {
		t.Fatalf("err %v, options %v", err, got(p))
	}
	if !reflect.DeepEqual(*got(p), want) {
		t.Errorf("got  %+v\nwant %+v", *got(p), want)
	}
}

// TestConvertForms: every way scripts, recipes, docs and the e2e suite
// spell a convert command line (plus Go flag's spellings the old parser
// took) gives the options the old parser gave.
func TestConvertForms(t *testing.T) {
	t.Setenv("C2VM_DEBIAN_MIRROR", "")
	t.Setenv("SOURCE_DATE_EPOCH", "")
	stub := filepath.Join(t.TempDir(), "stub.efi")
	if err := os.WriteFile(stub, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fwd := func(hostIP string, host, guest uint16) plan.Forward {
		return plan.Forward{HostIP: hostIP, HostPort: host, GuestPort: guest, Proto: "tcp"}
	}
	for _, tc := range []struct {
		name string
		args []string
		want func(o *convert.Options)
	}{
		{"README quick start", []string{"alpine.tar", "--platform", "linux/arm64", "-o", "alpine.vm"}, func(o *convert.Options) {
			o.Image, o.Platform, o.Output = "alpine.tar", linux("arm64"), "alpine.vm"
		}},
		{"Yocto bbclass with the example's C2VM_ARGS", []string{"-q", "--platform", "linux/arm64", "--kernel", "/w/kernel", "--memory", "256", "-o", "/w/app", "oci:/src"}, func(o *convert.Options) {
			o.Image, o.Platform, o.Kernel, o.Memory, o.Output = "oci:/src", linux("arm64"), convert.One("/w/kernel"), 256, "/w/app"
		}},
		{"bench.sh", []string{"-q", "--no-kernel", "--rootfs", "ext4", "oci:img", "-o", "e"}, func(o *convert.Options) {
			o.Image, o.NoKernel, o.RootfsFormat, o.Output = "oci:img", true, "ext4", "e"
		}},
		{"Makefile demo", []string{"oci:fix/busybox-amd64", "-o", "demo/busybox-amd64.vm", "--kernel", "k.deb"}, func(o *convert.Options) {
			o.Image, o.Output, o.Kernel = "oci:fix/busybox-amd64", "demo/busybox-amd64.vm", convert.One("k.deb")
		}},
		{"README data disks", []string{"-o", "app.vm", "--data-disk", "app.vm/data-0.img", "new-image.tar"}, func(o *convert.Options) {
			o.Image, o.Output, o.DataDisks = "new-image.tar", "app.vm", []string{"app.vm/data-0.img"}
		}},
		{"registry e2e", []string{"--no-kernel", "--json", "--creds", "u:p:w", "--platform", "linux/amd64", "docker://r/x:1", "-o", "out"}, func(o *convert.Options) {
			o.Image, o.NoKernel, o.Creds, o.Platform, o.Output = "docker://r/x:1", true, "u:p:w", linux("amd64"), "out"
		}},
		{"tls-verify=false", []string{"--tls-verify=false", "x"}, func(o *convert.Options) { o.Image, o.InsecureTLS = "x", true }},
		{"bare tls-verify", []string{"x", "--tls-verify"}, func(o *convert.Options) { o.Image = "x" }},
		{"config overrides", []string{"x", "--user", "nobody:app", "--workdir", "/tmp", "--env", "FOO=a,b", "-e", "BAR=2", "--hostname", "box",
			"--cmd", `["/bin/sh","-c","id; exit 3"]`, "--entrypoint", ""}, func(o *convert.Options) {
			o.Image = "x"
			o.Overrides.User, o.Overrides.Workdir, o.Overrides.Hostname = "nobody:app", "/tmp", "box"
			o.Overrides.Env = []string{"FOO=a,b", "BAR=2"}
			o.Overrides.Cmd, o.Overrides.CmdSet = []string{"/bin/sh", "-c", "id; exit 3"}, true
			o.Overrides.EntrypointSet = true
		}},
		{"shell-split cmd", []string{"--cmd", "echo hi", "x"}, func(o *convert.Options) {
			o.Image, o.Overrides.Cmd, o.Overrides.CmdSet = "x", []string{"echo", "hi"}, true
		}},
		{"foreign arch", []string{"x", "--vm-arch", "amd64", "--binfmt-interpreter", "/q", "--binfmt", "arm64,riscv64", "--binfmt", "arm"}, func(o *convert.Options) {
			o.Image, o.VMArch, o.BinfmtInterpreter, o.Binfmt = "x", "amd64", "/q", []string{"arm64", "riscv64", "arm"}
		}},
		{"ports and volumes", []string{"x", "--publish", "18080:8080", "-p", "0.0.0.0:53:53/udp", "--no-publish", "--volume", "/data", "--volume", "/a,b", "--data-size", "64M"}, func(o *convert.Options) {
			o.Image, o.NoPublish, o.Volumes, o.DataSize = "x", true, []string{"/data", "/a,b"}, 64<<20
			udp := fwd("0.0.0.0", 53, 53)
			udp.Proto = "udp"
			o.Publish = []plan.Forward{fwd("127.0.0.1", 18080, 8080), udp}
		}},
		{"disk", []string{"x", "--disk", "qcow2", "--efi-stub", stub, "--verity", "--init", "/i", "--stop-timeout", "30s", "--cpus", "2"}, func(o *convert.Options) {
			o.Image, o.Disk, o.EFIStub, o.Verity, o.Init, o.StopTimeout, o.CPUs = "x", "qcow2", convert.One(stub), true, convert.One("/i"), 30*time.Second, 2
		}},
		{"kernel sources", []string{"x", "--kernel", "debian:trixie", "--kernel-mirror", "http://m", "--kernel-keyring", "k.asc"}, func(o *convert.Options) {
			o.Image, o.Kernel, o.KernelMirror, o.KernelKeyring = "x", convert.One("debian:trixie"), "http://m", "k.asc"
		}},
		{"GNU = forms", []string{"--platform=linux/arm64", "--output=o", "--memory=1024", "--rootfs=ext4", "-oout", "x"}, func(o *convert.Options) {
			o.Image, o.Platform, o.Output, o.Memory, o.RootfsFormat = "x", linux("arm64"), "out", 1024, "ext4"
		}},
		{"Go flag's one-dash long names", []string{"-platform", "linux/arm64", "-output", "o", "-no-kernel", "-memory=256", "-env", "A=1", "-json", "x"}, func(o *convert.Options) {
			o.Image, o.Platform, o.Output, o.NoKernel, o.Memory, o.Overrides.Env = "x", linux("arm64"), "o", true, 256, []string{"A=1"}
		}},
		{"grouped shorthands", []string{"-qo", "d", "-qe", "A=1", "x"}, func(o *convert.Options) {
			o.Image, o.Output, o.Overrides.Env = "x", "d", []string{"A=1"}
		}},
		{"Go flag's two-dash shorthands", []string{"--o", "d", "--q", "x"}, func(o *convert.Options) { o.Image, o.Output = "x", "d" }},
		{"a value that looks like a flag", []string{"--hostname", "-json", "-o=-q", "x"}, func(o *convert.Options) {
			o.Image, o.Overrides.Hostname, o.Output = "x", "-json", "-q"
		}},
		{"-- ends the flags", []string{"-q", "--", "-image.tar"}, func(o *convert.Options) { o.Image = "-image.tar" }},
		{"jobs", []string{"-j", "2", "x"}, func(o *convert.Options) { o.Image, o.Jobs = "x", 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := convert.Options{Version: Version, Epoch: time.Unix(0, 0).UTC()}
			tc.want(&want)
			wantParsed(t, append([]string{"convert"}, tc.args...), withoutParameters, want)
		})
	}
}

// linux is the platform linux/arch.
func linux(arch string) *ocispec.Platform { return &ocispec.Platform{OS: "linux", Architecture: arch} }

// withoutParameters is the options parsed, Parameters (the provenance's
// record of the flags, TestProvenanceParameters) left out.
func withoutParameters(p parsed) *convert.Options {
	if p.convert == nil {
		return nil
	}
	o := *p.convert
	o.Parameters = nil
	return &o
}

// TestProvenanceParameters: the provenance records the flags as given,
// but not the registry password, the output directory or --jobs (which
// changes no byte).
func TestProvenanceParameters(t *testing.T) {
	p, err := parse(t, "convert", "--creds", "u:secret", "-o", "out", "-e", "A=1", "-e", "B=2", "--verity", "--memory=256", "-j", "3", "img")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"image": "img", "env": []string{"A=1", "B=2"}, "verity": "true", "memory": "256"}
	if !reflect.DeepEqual(p.convert.Parameters, want) {
		t.Errorf("parameters %v, want %v", p.convert.Parameters, want)
	}
	if p.convert.Jobs != 3 {
		t.Errorf("-j 3 gives Jobs %d", p.convert.Jobs)
	}
}

// TestConvertQuiet: -q (and --quiet, --q) drops the progress writer.
func TestConvertQuiet(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		quiet bool
	}{
		{[]string{"x"}, false},
		{[]string{"-q", "x"}, true},
		{[]string{"x", "--quiet"}, true},
		{[]string{"--q", "x"}, true},
		{[]string{"-q=false", "x"}, false},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var got convert.Options
			a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, convert: func(_ context.Context, o convert.Options) (*convert.Result, error) {
				got = o
				return nil, errParsed
			}}
			if err := a.run(context.Background(), append([]string{"convert"}, tc.args...)); !errors.Is(err, errParsed) {
				t.Fatal(err)
			}
			if (got.Progress == nil) != tc.quiet {
				t.Errorf("progress %v, want quiet %v", got.Progress, tc.quiet)
			}
		})
	}
}

// TestRunForms: run's spellings in the e2e suite, README and Makefile.
func TestRunForms(t *testing.T) {
	host := t.TempDir()
	share := func(ro bool) launch.Share { return launch.Share{Host: host, Guest: "/mnt/host", ReadOnly: ro} }
	fwd := func(h, g uint16) plan.Forward {
		return plan.Forward{HostIP: "127.0.0.1", HostPort: h, GuestPort: g, Proto: "tcp"}
	}
	for _, tc := range []struct {
		name string
		args []string
		want func(o *launch.Options)
	}{
		{"Makefile demo", []string{"--timeout", "5m", "d.vm"}, func(o *launch.Options) { o.Timeout = 5 * time.Minute }},
		{"appliance e2e", []string{"--accel", "tcg", "-p", "18080:8080", "d.vm"}, func(o *launch.Options) {
			o.Accel, o.Publish = "tcg", []plan.Forward{fwd(18080, 8080)}
		}},
		{"README command after --", []string{"d.vm", "--", "echo", "hello"}, func(o *launch.Options) { o.Cmd = []string{"echo", "hello"} }},
		{"flags after -- are the command's", []string{"--debug", "d.vm", "--", "/bin/sh", "-c", "exit 3", "--json", "-q"}, func(o *launch.Options) {
			o.Debug, o.Cmd = true, []string{"/bin/sh", "-c", "exit 3", "--json", "-q"}
		}},
		{"shares", []string{"-v", host + ":/mnt/host", "d.vm", "--volume", host + ":/mnt/host:ro"}, func(o *launch.Options) {
			o.Shares = []launch.Share{share(false), share(true)}
		}},
		{"every flag", []string{"d.vm", "--memory", "1024", "--cpus", "2", "--stop-timeout", "20s", "--publish", "1:2", "-P", "--no-publish"}, func(o *launch.Options) {
			o.Memory, o.CPUs, o.StopTimeout, o.Publish, o.PublishAll, o.NoPublish = 1024, 2, 20*time.Second, []plan.Forward{fwd(1, 2)}, true, true
		}},
		{"--publish-all", []string{"--publish-all", "d.vm"}, func(o *launch.Options) { o.PublishAll = true }},
		{"Go flag's spellings", []string{"-accel", "kvm", "-timeout=1m", "--p", "3:4", "--P", "d.vm"}, func(o *launch.Options) {
			o.Accel, o.Timeout, o.Publish, o.PublishAll = "kvm", time.Minute, []plan.Forward{fwd(3, 4)}, true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := launch.Options{Dir: "d.vm", Accel: "auto"}
			tc.want(&want)
			wantParsed(t, append([]string{"run"}, tc.args...), func(p parsed) *launch.Options { return p.launch }, want)
		})
	}
}

// TestInspectForms: inspect's spellings in the e2e suite and README.
func TestInspectForms(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want image.Options
	}{
		{[]string{"--json", "docker://r/x", "--platform", "linux/arm64"}, image.Options{Platform: "linux/arm64"}},
		{[]string{"--json", "--creds", "u:p", "--platform", "linux/amd64", "docker://r/x"}, image.Options{Platform: "linux/amd64", Creds: "u:p"}},
		{[]string{"docker://r/x", "--tls-verify=false"}, image.Options{InsecureTLS: true}},
		{[]string{"-platform=linux/riscv64", "-json", "docker://r/x"}, image.Options{Platform: "linux/riscv64"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			p, err := parse(t, append([]string{"inspect"}, tc.args...)...)
			if err != nil || p.image == nil || p.ref != "docker://r/x" || !reflect.DeepEqual(*p.image, tc.want) {
				t.Errorf("ref %q options %+v err %v; want %+v", p.ref, p.image, err, tc.want)
			}
		})
	}
}

// TestGoFlagForms: the rewrite of Go flag's spellings touches flags only:
// not values, not what follows "--", not unknown names.
func TestGoFlagForms(t *testing.T) {
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	fs := a.runCmd().Flags()
	for _, tc := range []struct{ in, want []string }{
		{[]string{"-timeout", "-debug", "d"}, []string{"--timeout", "-debug", "d"}},
		{[]string{"-debug", "d", "--", "-debug", "--p"}, []string{"--debug", "d", "--", "-debug", "--p"}},
		{[]string{"--p", "1:2", "--P", "-Pp", "-accel", "d"}, []string{"-p", "1:2", "-P", "-Pp", "-accel", "d"}},
		{[]string{"-nosuch", "--v=a:b", "-v=c:d"}, []string{"-nosuch", "-v=a:b", "-v=c:d"}},
		{[]string{"-no-publish=false", "--publish-all"}, []string{"--no-publish=false", "--publish-all"}},
	} {
		if got := goFlagForms(fs, tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSecureBootFlags: the key and certificate go together and with
// --disk (usage errors), and are read before any work: a key that is not
// the certificate's, or not RSA, is an error naming both files.
func TestSecureBootFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, block *pem.Block) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rsaKey.PublicKey, rsaKey)
	cert := write("db.pem", &pem.Block{Type: "CERTIFICATE", Bytes: der})
	k8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	key := write("db.key", &pem.Block{Type: "PRIVATE KEY", Bytes: k8})
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherKey := write("other.key", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	e8, _ := x509.MarshalPKCS8PrivateKey(edKey)
	ed := write("ed.key", &pem.Block{Type: "PRIVATE KEY", Bytes: e8})
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"key alone", []string{"--disk", "raw", "--secure-boot-key", key}, true, "go together"},
		{"no disk", []string{"--secure-boot-key", key, "--secure-boot-cert", cert}, true, "add --disk"},
		{"another key", []string{"--disk", "raw", "--secure-boot-key", otherKey, "--secure-boot-cert", cert}, false, "not the certificate's"},
		{"not RSA", []string{"--disk", "raw", "--secure-boot-key", ed, "--secure-boot-cert", cert}, false, "not RSA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, append([]string{"convert", "x"}, tc.args...)...)
			var ue usageError
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &ue) != tc.usage {
				t.Errorf("err %v, want one with %q (usage error: %v)", err, tc.want, tc.usage)
			}
		})
	}
	p, err := parse(t, "convert", "x", "--disk", "raw", "--secure-boot-key", key, "--secure-boot-cert", cert)
	if err != nil || p.convert.SecureBoot == nil || !p.convert.SecureBoot.Cert.Equal(mustCert(t, der)) {
		t.Errorf("a matching pair: %v, %+v", err, p.convert)
	}
}

func mustCert(t *testing.T, der []byte) *x509.Certificate {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
