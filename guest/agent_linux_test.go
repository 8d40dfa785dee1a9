package guest

import (
	"reflect"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/c2vm/c2vm/bootcfg/wire"
)

// TestExecProcess: an exec starts from the container's process; -e adds
// to or replaces its env as docker exec -e, -w replaces its cwd; what
// exec leaves empty stays the container's.
func TestExecProcess(t *testing.T) {
	c := specs.Process{Args: []string{"/bin/sleep", "1"}, Env: []string{"PATH=/bin", "FOO=bar"}, Cwd: "/home/app",
		User: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10}}, NoNewPrivileges: true,
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}}}
	p, err := execProcess(c, wire.Process{Args: []string{"id"}, Env: []string{"FOO=baz", "NEW=1"}, Cwd: "/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	want := c
	want.Args, want.Env, want.Cwd = []string{"id"}, []string{"PATH=/bin", "FOO=baz", "NEW=1"}, "/tmp"
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got %+v\nwant %+v", p, want)
	}
	if c.Env[1] != "FOO=bar" {
		t.Error("the container's env was changed")
	}
	p, _ = execProcess(c, wire.Process{Args: []string{"id"}})
	if p.Cwd != "/home/app" || p.User.UID != 1000 || !reflect.DeepEqual(p.Env, c.Env) {
		t.Errorf("without overrides: %+v", p)
	}
}

// TestIdler: stop runs once no session has been open for d, not while
// one is.
func TestIdler(t *testing.T) {
	stopped := make(chan struct{}, 1)
	i := newIdler(50*time.Millisecond, func() { stopped <- struct{}{} })
	i.add(1)
	select {
	case <-stopped:
		t.Fatal("stopped with a session open")
	case <-time.After(200 * time.Millisecond):
	}
	i.add(-1)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("not stopped after the last session")
	}
	newIdler(0, func() { t.Error("an idler of 0 stopped") }).add(0)
}
