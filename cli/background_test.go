package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/launch/state"
)

// TestBackgroundErrors: the background commands' mistakes and unknown
// names are one line on stderr with the documented status.
func TestBackgroundErrors(t *testing.T) {
	t.Setenv(state.EnvDir, t.TempDir())
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--name", "web", "d"}, 2, "--name and --idle-timeout need -d"},
		{[]string{"run", "--idle-timeout", "1m", "d"}, 2, "need -d"},
		{[]string{"run", "-d", "--name", "../x", "d"}, 2, `invalid VM name "../x"`},
		{[]string{"run", "-d", "--idle-timeout", "soon", "d"}, 2, "--idle-timeout"},
		{[]string{"logs", "nope"}, 1, "c2vm: no such VM: nope\n"},
		{[]string{"logs", "--tail", "-3", "nope"}, 2, "--tail"},
		{[]string{"logs"}, 2, "exactly one NAME"},
		{[]string{"stop", "nope"}, 1, "c2vm: no such VM: nope\n"},
		{[]string{"stop", "a", "b"}, 1, "c2vm: no such VM: a; no such VM: b\n"},
		{[]string{"stop"}, 2, "one or more NAME"},
		{[]string{"rm", "-f", "nope"}, 1, "c2vm: no such VM: nope\n"},
		{[]string{"rm"}, 2, "one or more NAME"},
		{[]string{"ps", "x"}, 2, "ps takes no arguments"},
	} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%q: exit %d stderr %q; want %d and one line with %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}

// TestPsEmpty: ps with no VMs prints its header; --json an empty array.
func TestPsEmpty(t *testing.T) {
	t.Setenv(state.EnvDir, t.TempDir())
	for args, want := range map[string]string{"": "NAME   STATUS   PORTS   ARCH   DIR\n", "--json": "[]\n"} {
		var out bytes.Buffer
		argv := append([]string{"ps", "-a"}, strings.Fields(args)...)
		if code := Main(context.Background(), argv, &out, &bytes.Buffer{}); code != 0 || out.String() != want {
			t.Errorf("%q: exit %d, %q; want %q", argv, code, out.String(), want)
		}
	}
}
