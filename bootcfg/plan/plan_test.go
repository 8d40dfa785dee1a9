package plan

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// everyStep has one step of each kind, with fields set.
func everyStep() []Step {
	return []Step{
		{Action: &Mount{Source: "proc", Target: "/proc", FSType: "proc", Options: []string{"nosuid"}}},
		{Action: &Cmdline{}},
		{Action: &LoadModule{Path: "/lib/modules/x.ko"}, Optional: true},
		{Action: &FindRoot{FSType: "squashfs", WaitSeconds: 10, Target: "/run/c2vm/lower"}},
		{Action: &VerityRoot{FSType: "squashfs", WaitSeconds: 10, Name: "c2vm-root", DataBlocks: 3, HashOffset: 4096, RootHash: "ab", Salt: "cd"}},
		{Action: &Mkdir{Path: "/run/x", Mode: 0o755}},
		{Action: &Move{From: "/dev", To: "/newroot/dev"}},
		{Action: &WriteFile{Path: "/etc/hosts", Data: "127.0.0.1 localhost\n", Mode: 0o644, IfMissing: true}, Optional: true},
		{Action: &Hostname{Name: "box"}},
		{Action: &RegisterBinfmt{Binfmt: Binfmt{Name: "qemu-aarch64", Type: "M", Magic: []byte("\x7fELF"), Interpreter: "/q", Flags: "F"}}},
		{Action: &BinfmtD{Files: []string{"/etc/binfmt.d/a.conf"}}},
		{Action: &PowerButton{}, Optional: true},
		{Action: &Agent{Port: "org.c2vm.agent.0"}, Optional: true},
		{Action: &Shares{}},
		{Action: &SwitchRoot{Path: "/newroot"}},
		{Action: &MaskPath{Path: "/proc/kcore"}},
		{Action: &ReadonlyPath{Path: "/proc/sys"}},
		{Action: &MountVolume{Label: "c2vm-vol-0", Path: "/data", WaitSeconds: 10}},
		{Action: &Unmount{Path: "/data"}, Optional: true},
		{Action: &Run{Process: specs.Process{Args: []string{"/bin/sh"}, Cwd: "/", Env: []string{"A=1"}}, StopSignal: 15, StopTimeout: 10}},
		{Action: &Network{Mode: NetUser, Interface: "eth0", Address: "10.0.2.15/24", Gateway: "10.0.2.2", DNS: []string{"10.0.2.3"}, Hostname: "h", WaitSeconds: 5, Exposed: []Port{{Port: 80, Proto: "tcp"}}}, Optional: true},
	}
}

func TestStepsRoundTrip(t *testing.T) {
	steps := everyStep()
	kinds := map[string]bool{}
	for _, s := range steps {
		kinds[s.Op()] = true
	}
	if len(kinds) != len(Ops()) {
		t.Fatalf("everyStep covers %d kinds, the package registers %v", len(kinds), Ops())
	}
	p := &Plan{Version: Version, Steps: steps}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("round trip differs:\n%+v\n%+v", back.Steps, p.Steps)
	}
	for _, s := range back.Steps {
		t.Run(s.Op(), func(t *testing.T) {
			if str := s.String(); str == "" || strings.Contains(str, "%!") {
				t.Errorf("String() = %q", str)
			}
		})
	}
}

func TestStepJSON(t *testing.T) {
	b, err := json.Marshal(Step{Action: &Mkdir{Path: "/x", Mode: 0o700}, Optional: true})
	if err != nil || string(b) != `{"op":"mkdir","optional":true,"path":"/x","mode":448}` {
		t.Errorf("%s %v", b, err)
	}
	if b, _ := json.Marshal(Step{Action: &Cmdline{}}); string(b) != `{"op":"cmdline"}` {
		t.Errorf("%s", b)
	}
	for _, tc := range []struct{ name, json, want string }{
		{"unknown op", `{"version":2,"steps":[{"op":"format-disk"}]}`, `unknown step "format-disk"`},
		{"old version", `{"version":1,"modules":[]}`, "version 1"},
		{"bad field", `{"version":2,"steps":[{"op":"mkdir","mode":"x"}]}`, "step mkdir"},
		{"not json", `{`, "parsing boot plan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Read(strings.NewReader(tc.json)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	cmd := base64.StdEncoding.EncodeToString([]byte(`["/bin/sh","-c","echo hi"]`))
	env := base64.RawURLEncoding.EncodeToString([]byte("B=has space"))
	a, err := ParseArgs("console=ttyS0 c2vm.cmd=" + cmd + " c2vm.env=A=1 c2vm.env=" + env + " c2vm.debug=1 quiet")
	want := Args{Cmd: []string{"/bin/sh", "-c", "echo hi"}, Env: []string{"A=1", "B=has space"}, Debug: true}
	if err != nil || !reflect.DeepEqual(a, want) {
		t.Errorf("%+v %v", a, err)
	}
	// String is ParseArgs' inverse, spaces and quotes included.
	in := Args{Cmd: []string{"sh", "-c", `echo "a b"`}, Env: []string{"X=y z"}, Debug: true, Net: NetDHCP,
		Shares:   []Share{{Tag: "c2vm0", FSType: "virtiofs", Path: "/srv", ReadOnly: true}, {Tag: "c2vm1", FSType: "9p", Path: "/x"}},
		RootHash: hashA, Idle: 90 * time.Second}
	if back, err := ParseArgs(in.String()); err != nil || !reflect.DeepEqual(back, in) {
		t.Errorf("round trip of %q: %+v %v", in.String(), back, err)
	}
	for _, bad := range []string{"c2vm.share=t,nfs,/x", "c2vm.share=t,9p,rel", "c2vm.share=t,9p,/x,rw", "c2vm.net=bridge", "c2vm.cmd=!!!", "c2vm.cmd=" + base64.StdEncoding.EncodeToString([]byte("{}")), "c2vm.env=noequals", "c2vm.idle=5", "c2vm.idle=-1s", "c2vm.idle=0s",
		"c2vm.roothash=" + hashA[:62], "c2vm.roothash=" + hashA + "00", "c2vm.roothash=" + strings.Repeat("g", 64), "c2vm.roothash=",
		"c2vm.roothash=" + hashA + " c2vm.roothash=" + hashB} {
		t.Run(bad, func(t *testing.T) {
			if _, err := ParseArgs(bad); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// Two sha256 root hashes for the c2vm.roothash tests.
var (
	hashA = strings.Repeat("0123456789abcdef", 4)
	hashB = strings.Repeat("fedcba9876543210", 4)
)

// TestRootHashArg: c2vm.roothash is read in either case and kept in lower
// case; the same value twice is one value.
func TestRootHashArg(t *testing.T) {
	for _, tc := range []struct{ name, cmdline, want string }{
		{"absent", "console=ttyS0", ""},
		{"lower", "c2vm.roothash=" + hashA, hashA},
		{"upper", "c2vm.roothash=" + strings.ToUpper(hashA), hashA},
		{"repeated, equal", "c2vm.roothash=" + hashA + " quiet c2vm.roothash=" + strings.ToUpper(hashA), hashA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseArgs(tc.cmdline)
			if err != nil || a.RootHash != tc.want {
				t.Errorf("RootHash %q, %v; want %q", a.RootHash, err, tc.want)
			}
		})
	}
}

// TestRootHashFor is ArgRootHash's rule: a command line can make the
// dm-verity check stricter, never weaker.
func TestRootHashFor(t *testing.T) {
	for _, tc := range []struct {
		name      string
		plan      *VerityRoot // nil: no verity step
		arg, want string
		err       []string // substrings of the error, nil for none
	}{
		{"no verity, no arg", nil, "", "", nil},
		{"no verity, an arg", nil, hashA, "", []string{"dm-verity", hashA, "without dm-verity"}},
		{"plan only", &VerityRoot{RootHash: hashA}, "", hashA, nil},
		{"both, equal", &VerityRoot{RootHash: hashA}, hashA, hashA, nil},
		{"both, equal but for case", &VerityRoot{RootHash: strings.ToUpper(hashA)}, hashA, strings.ToUpper(hashA), nil},
		{"both, different", &VerityRoot{RootHash: hashA}, hashB, "", []string{"dm-verity", hashA, hashB}},
		{"command line only", &VerityRoot{}, hashB, hashB, nil},
		{"neither", &VerityRoot{}, "", "", []string{"dm-verity", "no root hash"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Args{RootHash: tc.arg}.RootHashFor(tc.plan)
			if got != tc.want || (err != nil) != (tc.err != nil) {
				t.Fatalf("RootHashFor = %q, %v; want %q, error %v", got, err, tc.want, tc.err != nil)
			}
			for _, s := range tc.err {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Add("console=ttyS0 c2vm.debug=1 c2vm.env=A=1")
	f.Add(Args{Cmd: []string{"a", "b c"}, Env: []string{"K=V"}}.String())
	f.Add("panic=-1 c2vm.roothash=" + strings.ToUpper(hashA) + " c2vm.roothash=" + hashA)
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseArgs(s)
		if err != nil {
			return
		}
		back, err := ParseArgs(a.String())
		if err != nil {
			t.Fatalf("re-parsing %q: %v", a.String(), err)
		}
		if len(back.Cmd) != len(a.Cmd) || len(back.Env) != len(a.Env) || back.Debug != a.Debug || back.RootHash != a.RootHash {
			t.Fatalf("round trip %+v -> %+v", a, back)
		}
	})
}

func TestMergeEnv(t *testing.T) {
	for _, tc := range []struct {
		name           string
		env, overrides []string
		want           []string
	}{
		{"replace and add", []string{"A=1", "B=2"}, []string{"B=3", "C=4"}, []string{"A=1", "B=3", "C=4"}},
		{"prefix is not a key", []string{"AB=1"}, []string{"A=2"}, []string{"AB=1", "A=2"}},
		{"dedup in order", nil, []string{"A=1", "A=2"}, []string{"A=2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MergeEnv(tc.env, tc.overrides); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%q", got)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 15}, {"SIGTERM", 15}, {"TERM", 15}, {"sigquit", 3}, {"9", 9}, {"SIGRTMIN", 34},
		{"SIGRTMIN+3", 37}, {"SIGRTMAX-1", 63}, {"SIGWINCH", 28},
		{"SIGNOPE", 0}, {"0", 0}, {"65", 0}, {"SIGRTMIN+40", 0}, {"SIGRTMIN-1", 0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, err := ParseSignal(tc.in)
			if n != tc.want || (err != nil) != (tc.want == 0) {
				t.Errorf("ParseSignal(%q) = %d, %v; want %d", tc.in, n, err, tc.want)
			}
		})
	}
}

func TestVerityTable(t *testing.T) {
	v := &VerityRoot{Name: VerityRootName, DataBlocks: 300, HashOffset: 4096, RootHash: "ab12", Salt: "cd34"}
	want := "1 /dev/vda /dev/vdb 4096 4096 300 1 sha256 ab12 cd34"
	if got := v.Table("/dev/vda", "/dev/vdb"); got != want {
		t.Errorf("Table = %q, want %q", got, want)
	}
	if v.Sectors() != 300*8 || v.Device() != "/dev/mapper/c2vm-root" {
		t.Errorf("Sectors %d, Device %s", v.Sectors(), v.Device())
	}
}
