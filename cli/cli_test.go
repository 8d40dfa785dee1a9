package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/c2vm/c2vm/internal/fixtures"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		in    string
		split bool
		want  []string
	}{
		{`["/bin/sh","-c","echo a b"]`, true, []string{"/bin/sh", "-c", "echo a b"}},
		{"echo hi there", true, []string{"echo", "hi", "there"}},
		{"/usr/bin/my entry", false, []string{"/usr/bin/my entry"}},
		{"", false, nil},
	} {
		got, err := parseCommand(tc.in, tc.split)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %q %v", tc.in, got, err)
		}
	}
	if _, err := parseCommand(`["unterminated`, true); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "no command"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"convert"}, 2, "exactly one IMAGE"},
		{[]string{"convert", "a", "b"}, 2, "exactly one IMAGE"},
		{[]string{"convert", "--data-size", "lots", "x"}, 2, "--data-size"},
		{[]string{"run"}, 2, "exactly one DIR"},
		{[]string{"run", "/nonexistent"}, 1, "not a bootable c2vm output"},
		{[]string{"version"}, 0, ""},
		{[]string{"inspect"}, 2, "exactly one IMAGE"},
		{[]string{"inspect", "/nonexistent"}, 1, "no such file"},
		{[]string{"convert", "--tls-verify=maybe", "x"}, 2, "tls-verify"},
		{[]string{"inspect", "--creds", "nopassword", "docker://x/y"}, 2, "USER:PASSWORD"},
		{[]string{"conver", "x"}, 2, `unknown command "conver" (did you mean convert?)`},
		{[]string{"version", "x"}, 2, "version takes no arguments"},
		{[]string{"run", "a", "b", "--", "c"}, 2, "exactly one DIR"},
		{[]string{"run", "--", "c"}, 2, "exactly one DIR"},
		{[]string{"run", "d", "--memory", "lots"}, 2, "--memory"},
		{[]string{"run", "d", "--timeout=5"}, 2, "--timeout"},
		{[]string{"convert", "-o"}, 2, "needs an argument"},
	} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%q: exit %d stderr %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
	// An unknown flag, of any command, is one line on stderr, exit 2.
	for _, args := range [][]string{
		{"--frob"},
		{"convert", "x", "--frob"},
		{"convert", "-Z", "x"},
		{"inspect", "--frob", "x"},
		{"run", "d", "--frob"},
		{"version", "--frob"},
		{"completion", "bash", "--frob"},
	} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), args, &out, &errb)
		if code != 2 || !strings.HasPrefix(errb.String(), "c2vm: unknown") || strings.Count(errb.String(), "\n") != 1 || out.Len() != 0 {
			t.Errorf("%q: exit %d stdout %q stderr %q; want 2 and one line", args, code, out.String(), errb.String())
		}
	}
	// A malformed -p/--publish is one line on stderr, exit 2.
	for _, args := range [][]string{
		{"run", "/nonexistent", "-p", "8080"},
		{"run", "/nonexistent", "-p", "18080:8080", "--publish", "x:80"},
		{"run", "-p", "1-5:1-5", "/nonexistent"},
		{"run", "/nonexistent", "-p", "[::1]:80:80"},
		{"run", "/nonexistent", "-p", "80:80/tcp;reboot"},
		{"convert", "x", "--publish", "127.0.0.1,hostfwd=tcp::22-:22:80:80"},
		{"convert", "x", "--publish", "0:80"},
	} {
		var errb bytes.Buffer
		code := Main(context.Background(), args, &bytes.Buffer{}, &errb)
		if code != 2 || !strings.HasPrefix(errb.String(), "c2vm: --publish: port mapping") || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%q: exit %d stderr %q; want 2 and one line about the port mapping", args, code, errb.String())
		}
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	var errb bytes.Buffer
	if code := Main(context.Background(), []string{"convert", "x"}, &bytes.Buffer{}, &errb); code != 2 || !strings.Contains(errb.String(), "SOURCE_DATE_EPOCH") {
		t.Errorf("bad SOURCE_DATE_EPOCH: %d %q", code, errb.String())
	}
}

// TestJSONErrors: with --json, a failure is also one JSON document on
// stdout carrying the message and the exit status; stderr keeps its line.
func TestJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"convert", "--json"}, 2},
		{[]string{"convert", "/nonexistent", "--json"}, 1},
		{[]string{"convert", "--json", "--no-such-flag", "x"}, 2},
		{[]string{"inspect", "--json", "/nonexistent"}, 1},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), tc.args, &out, &errb)
			var got errorResult
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("stdout %q: %v", out.String(), err)
			}
			if code != tc.code || got.ExitCode != code || got.Error == "" || !strings.Contains(errb.String(), got.Error) {
				t.Errorf("exit %d, stdout %+v, stderr %q; want %d", code, got, errb.String(), tc.code)
			}
		})
	}
}

// TestHelp: every way of asking for help prints it on stdout and exits 0;
// the root's ends with the exit statuses.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "Exit status:"},
		{[]string{"-h"}, "Exit status:"},
		{[]string{"help"}, "Exit status:"},
		{[]string{"-help"}, "Exit status:"},
		{[]string{"help", "convert"}, "--platform string"},
		{[]string{"convert", "-h"}, "-o, --output string"},
		{[]string{"convert", "-help"}, "-q, --quiet"},
		{[]string{"inspect", "--help"}, "--creds USER:PASSWORD"},
		{[]string{"run", "x", "--help"}, "-p, --publish stringArray"},
		{[]string{"completion", "--help"}, "bash"},
		{[]string{"--version"}, "c2vm " + Version + "\n"},
		{[]string{"version"}, "c2vm " + Version + "\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), tc.args, &out, &errb)
			if code != 0 || errb.Len() != 0 || !strings.Contains(out.String(), tc.want) {
				t.Errorf("exit %d stderr %q stdout:\n%s\nwant 0 and %q", code, errb.String(), out.String(), tc.want)
			}
		})
	}
}

// TestExitStatusDocumented: the root help and README's "Exit status"
// table name the same statuses.
func TestExitStatusDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(fixtures.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "| status | meaning |")
	table, _, _ = strings.Cut(table, "\n\n")
	num := regexp.MustCompile(`\b\d+\b`)
	statuses := func(s string) []string {
		set := map[string]bool{}
		for _, n := range num.FindAllString(s, -1) {
			set[n] = true
		}
		var out []string
		for n := range set {
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
	got, want := statuses(table), statuses(exitStatusHelp)
	if !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("README's exit statuses %q, the help's %q", got, want)
	}
}

func TestTLSVerifyFlag(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		insecure bool
	}{
		{nil, false},
		{[]string{"--tls-verify"}, false},
		{[]string{"--tls-verify=true"}, false},
		{[]string{"--tls-verify=false"}, true},
		{[]string{"--tls-verify=0"}, true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			var p, c string
			var insecure bool
			var stall time.Duration
			registryFlags(fs, &p, &c, &insecure, &stall)
			if err := fs.Parse(tc.args); err != nil || insecure != tc.insecure {
				t.Errorf("insecure %v, err %v; want %v", insecure, err, tc.insecure)
			}
		})
	}
}
