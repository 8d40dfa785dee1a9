package guest

import (
	"encoding/base64"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseCmdline(t *testing.T) {
	cmd := base64.StdEncoding.EncodeToString([]byte(`["/bin/sh","-c","echo hi"]`))
	env := base64.RawURLEncoding.EncodeToString([]byte("B=has space"))
	c, err := ParseCmdline("console=ttyS0 c2vm.cmd=" + cmd + " c2vm.env=A=1 c2vm.env=" + env + " c2vm.debug=1 quiet")
	if err != nil {
		t.Fatal(err)
	}
	want := Cmdline{Cmd: []string{"/bin/sh", "-c", "echo hi"}, Env: []string{"A=1", "B=has space"}, Debug: true}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("%+v", c)
	}
	for _, bad := range []string{"c2vm.cmd=!!!", "c2vm.cmd=" + base64.StdEncoding.EncodeToString([]byte("{}")), "c2vm.env=noequals"} {
		if _, err := ParseCmdline(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMatchesFS(t *testing.T) {
	ext4 := make([]byte, 2048)
	ext4[1080], ext4[1081] = 0x53, 0xef
	sq := append([]byte("hsqs"), make([]byte, 2044)...)
	erofs := make([]byte, 2048)
	copy(erofs[1024:], []byte{0xe2, 0xe1, 0xf5, 0xe0})
	for _, tc := range []struct {
		head []byte
		fs   string
		want bool
	}{
		{ext4, "ext4", true}, {ext4, "squashfs", false}, {sq, "squashfs", true}, {erofs, "erofs", true},
		{make([]byte, 2048), "ext4", false}, {sq[:3], "squashfs", false},
	} {
		if got := MatchesFS(tc.head, tc.fs); got != tc.want {
			t.Errorf("%s: %v", tc.fs, got)
		}
	}
}

func TestLookPathAndEnv(t *testing.T) {
	files := map[string]bool{"/usr/bin/tool": true, "/bin/data": false}
	exists := func(p string) (bool, bool) { x, ok := files[p]; return x, ok }
	env := []string{"PATH=/bin:/usr/bin"}
	if p, ok := LookPath("tool", env, exists); !ok || p != "/usr/bin/tool" {
		t.Errorf("tool: %s %v", p, ok)
	}
	if _, ok := LookPath("data", env, exists); ok {
		t.Error("a non-executable found")
	}
	if p, ok := LookPath("/abs", env, exists); !ok || p != "/abs" {
		t.Error("absolute path not taken as is")
	}
	if got := MergeEnv([]string{"A=1", "B=2"}, []string{"B=3", "C=4"}); !reflect.DeepEqual(got, []string{"A=1", "B=3", "C=4"}) {
		t.Errorf("%q", got)
	}
}

func TestContainerMounts(t *testing.T) {
	dests := func(ms []specs.Mount) []string {
		var d []string
		for _, m := range ms {
			d = append(d, m.Destination)
		}
		return d
	}
	for _, tc := range []struct {
		spec []specs.Mount
		want []string
	}{
		{nil, []string{"/proc", "/sys", "/dev/pts", "/dev/shm"}},
		{
			[]specs.Mount{{Destination: "/sys/fs/cgroup", Type: "cgroup"}, {Destination: "/dev", Type: "tmpfs"}, {Destination: "/proc", Type: "proc"}, {Destination: "/dev/mqueue", Type: "mqueue"}},
			[]string{"/sys", "/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys/fs/cgroup"},
		},
	} {
		if got := dests(ContainerMounts(tc.spec)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	if p, ok := LookPath("sh", nil, func(p string) (bool, bool) { return p == "/bin/sh", p == "/bin/sh" }); !ok || p != "/bin/sh" {
		t.Errorf("no PATH in env: %s %v, want DefaultPath searched", p, ok)
	}
}
