package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// asC2VM makes this test binary c2vm itself when a shell it started calls
// it by that name (the completion scripts run `c2vm __complete ...`).
const asC2VM = "C2VM_CLI_TEST_AS_C2VM"

func TestMain(m *testing.M) {
	if os.Getenv(asC2VM) == "1" {
		os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// completionScript is `c2vm completion SHELL`'s output.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"completion", shell}, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Fatalf("completion %s: exit %d, stderr %q", shell, code, errb.String())
	}
	return out.String()
}

// c2vmOnPath puts this test binary on PATH as c2vm and returns the
// environment a shell needs to run it so.
func c2vmOnPath(t *testing.T) []string {
	t.Helper()
	fixtures.NeedTools(t, "bash")
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "c2vm")); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), asC2VM+"=1")
}

// TestCompletionScripts: each shell's script is generated and calls back
// into c2vm; bash's, sourced by bash, registers c2vm's completion.
func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		t.Run(shell, func(t *testing.T) {
			if s := completionScript(t, shell); !strings.Contains(s, "c2vm") || !strings.Contains(s, "__complete") {
				t.Errorf("no call back into c2vm in:\n%s", s)
			}
		})
	}
	cmd := exec.Command("bash", "-c", "source <(c2vm completion bash) && complete -p c2vm")
	cmd.Env = c2vmOnPath(t)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "complete -o default -F __start_c2vm c2vm" {
		t.Errorf("complete -p c2vm: %v: %s", err, out)
	}
}

// TestBashCompletion: bash, with bash-completion (which cobra's script
// needs, as every packaged completion does) and this test binary as c2vm,
// completes what a user types.
func TestBashCompletion(t *testing.T) {
	const lib = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(lib); err != nil {
		fixtures.Skip(t, "bash-completion is not installed (scripts/install-deps.sh)")
	}
	env := c2vmOnPath(t)
	script := filepath.Join(t.TempDir(), "c2vm.bash")
	if err := os.WriteFile(script, []byte(completionScript(t, "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	// complete WORD... prints what bash offers for the last word.
	const driver = `source "$1"; source "$2"
complete_words() {
	COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
	COMPREPLY=(); __start_c2vm 2>/dev/null
	printf '%s\n' "${COMPREPLY[@]}"
}
shift 2
complete_words c2vm "$@"`
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"con"}, "convert"},
		{[]string{"co"}, "completion\nconvert"},
		{[]string{"convert", "--rootfs", ""}, "erofs\next4\nsquashfs"},
		{[]string{"convert", "--disk", ""}, "raw\nqcow2\nvmdk\nvhdx"},
		{[]string{"convert", "--no-k"}, "--no-kernel"},
		{[]string{"run", "--accel", ""}, "auto\nkvm\ntcg"},
		{[]string{"run", "--pub"}, "--publish\n--publish-all"},
		{[]string{"inspect", "--platform", "linux/arm6"}, "linux/arm64"},
		{[]string{"convert", "--platform", "a"}, "all"},
		{[]string{"completion", "z"}, "zsh"},
	} {
		t.Run(strings.Join(tc.words, " "), func(t *testing.T) {
			cmd := exec.Command("bash", append([]string{"-c", driver, "bash", lib, script}, tc.words...)...)
			cmd.Env = env
			out, err := cmd.Output()
			if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
				t.Errorf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}
