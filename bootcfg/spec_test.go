package bootcfg

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/bootcfg/passwd"
	"github.com/c2vm/c2vm/bootcfg/plan"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var rootfs = fstest.MapFS{
	"etc/passwd": {Data: []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n# comment\nbroken line\n")},
	"etc/group":  {Data: []byte("root:x:0:\nwheel:x:10:app,other\naudio:x:29:app\napp:x:1000:\nstaff:x:50:\n")},
}

func TestArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}}
	for _, tc := range []struct {
		name string
		o    Overrides
		want []string
	}{
		{"image", Overrides{}, []string{"/entry", "default"}},
		{"cmd replaces cmd", Overrides{Cmd: []string{"x"}, CmdSet: true}, []string{"/entry", "x"}},
		{"entrypoint clears cmd", Overrides{Entrypoint: []string{"/sh"}, EntrypointSet: true}, []string{"/sh"}},
		{"entrypoint and cmd", Overrides{Entrypoint: []string{"/sh"}, EntrypointSet: true, Cmd: []string{"-c", "x"}, CmdSet: true}, []string{"/sh", "-c", "x"}},
		{"empty entrypoint", Overrides{EntrypointSet: true, Cmd: []string{"ls"}, CmdSet: true}, []string{"ls"}},
	} {
		if got := Args(img, tc.o); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestEnv(t *testing.T) {
	got := Env([]string{"A=1", "PATH=/bin"}, []string{"A=2", "B=3", "junk"}, "/home/app")
	want := []string{"A=2", "PATH=/bin", "B=3", "HOME=/home/app"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
	if got := Env(nil, nil, "/"); got[0] != "PATH="+plan.DefaultPath {
		t.Errorf("PATH not defaulted: %q", got)
	}
}

func TestResolveUser(t *testing.T) {
	for _, tc := range []struct {
		spec     string
		uid, gid uint32
		groups   []uint32
		err      error
	}{
		{"", 0, 0, nil, nil},
		{"app", 1000, 1000, []uint32{10, 29}, nil},
		{"1000", 1000, 1000, []uint32{10, 29}, nil},
		{"app:staff", 1000, 50, nil, nil},
		{"1000:50", 1000, 50, nil, nil},
		{"4242", 4242, 0, nil, nil},
		{"4242:4343", 4242, 4343, nil, nil},
		{"ghost", 0, 0, nil, passwd.ErrUnknownUser},
		{"app:ghosts", 0, 0, nil, passwd.ErrUnknownGroup},
	} {
		u, err := passwd.ResolveUser(tc.spec, rootfs)
		if !errors.Is(err, tc.err) {
			t.Errorf("%q: err %v, want %v", tc.spec, err, tc.err)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), strings.Split(tc.spec, ":")[len(strings.Split(tc.spec, ":"))-1]) {
				t.Errorf("%q: error %q does not name it", tc.spec, err)
			}
			continue
		}
		if u.UID != tc.uid || u.GID != tc.gid || !reflect.DeepEqual(u.AdditionalGIDs, tc.groups) {
			t.Errorf("%q: %+v", tc.spec, u)
		}
	}
}

func TestSpec(t *testing.T) {
	var cfg ocispec.Image
	cfg.Config = ocispec.ImageConfig{User: "app", Cmd: []string{"id"}, WorkingDir: "/home/app", Env: []string{"FOO=bar"},
		Labels: map[string]string{"org.opencontainers.image.title": "t", "other": "x"}}
	s, err := Spec(cfg, rootfs, Overrides{Env: []string{"X=1"}}, map[string]string{"io.c2vm.image.manifest-digest": "sha256:ab"})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Process
	if p.User.UID != 1000 || p.Cwd != "/home/app" || p.Args[0] != "id" || s.Hostname != DefaultHostname {
		t.Errorf("process %+v", p)
	}
	if s.Annotations["org.opencontainers.image.title"] != "t" || s.Annotations["other"] != "" || s.Annotations["io.c2vm.image.manifest-digest"] != "sha256:ab" {
		t.Errorf("annotations %v", s.Annotations)
	}
	if len(p.Capabilities.Bounding) != 14 || len(s.Mounts) != 7 {
		t.Errorf("containerd defaults: %d caps, %d mounts", len(p.Capabilities.Bounding), len(s.Mounts))
	}
	if _, err := Spec(ocispec.Image{}, rootfs, Overrides{}, nil); !errors.Is(err, ErrNoCommand) {
		t.Errorf("no command: %v", err)
	}
	// The plan round-trips through JSON.
	pl, err := Plan(s, PlanOptions{FSType: "squashfs", Binfmt: []plan.Binfmt{mustBinfmt(t, "arm64")}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(pl)
	var back plan.Plan
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(&back, pl) {
		t.Errorf("plan round trip: %v", err)
	}
	req := strings.Join(Requirements(PlanOptions{FSType: "squashfs", Binfmt: []plan.Binfmt{mustBinfmt(t, "arm64")}}), " ")
	for _, want := range []string{"CONFIG_SQUASHFS", "CONFIG_OVERLAY_FS", "CONFIG_BINFMT_MISC", "CONFIG_VIRTIO_BLK"} {
		if !strings.Contains(req, want) {
			t.Errorf("requirements %q lack %s", req, want)
		}
	}
}

func mustBinfmt(t *testing.T, name string) plan.Binfmt {
	a, err := arch.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return BinfmtFor(a, "/c2vm/qemu")
}

func TestNotApplied(t *testing.T) {
	s, err := Spec(ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"/bin/true"}}}, rootfs, Overrides{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if na := NotApplied(s); len(na) != 0 {
		t.Errorf("c2vm's own spec has parts the init does not apply: %q", na)
	}
	s.Process.Terminal = true
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	if na := NotApplied(s); len(na) != 2 || !strings.HasPrefix(na[0], "process.terminal") || na[1] != "linux.sysctl" {
		t.Errorf("%q", na)
	}
}
