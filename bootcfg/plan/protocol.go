package plan

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The console protocol: lines the init prints for the host (c2vm run, a
// test, a user's script) to read, one each, machine-readable.
const (
	// StatusLine prefixes the last line: the container's exit status,
	// "C2VM_EXIT_STATUS=<n>".
	StatusLine = "C2VM_EXIT_STATUS="
	// ErrorLine prefixes the init's own failure before the process ran,
	// "C2VM_INIT_ERROR=<message>"; StatusInitFailed follows.
	ErrorLine = "C2VM_INIT_ERROR="
	// LogPrefix starts the init's own messages (not the container's).
	LogPrefix = "c2vm-init: "
)

// Exit statuses the init reports for its own failures, as Docker does;
// the container's are its own, 128+N when killed by signal N.
const (
	StatusInitFailed    = 125
	StatusNotExecutable = 126
	StatusNotFound      = 127
)

// The c2vm.* kernel arguments the init reads (Cmdline step).
const (
	ArgCmd   = "c2vm.cmd"   // base64 of a JSON array: replaces the process args
	ArgEnv   = "c2vm.env"   // K=V, or base64 of K=V; repeatable: added to the env
	ArgDebug = "c2vm.debug" // 1: print each step as it runs
	ArgNet   = "c2vm.net"   // user, dhcp or none: overrides the Network step's mode
	ArgShare = "c2vm.share" // TAG,FSTYPE,PATH[,ro]; repeatable: a host share (Shares step)
	// ArgIdle is a Go duration ("90s", "5m"): the Agent step powers the
	// VM off, as the power button does, once no exec session has been
	// open for that long (c2vm run -d --idle-timeout).
	ArgIdle = "c2vm.idle"
	// ArgRootHash is the root filesystem's dm-verity root hash, 64 hex
	// digits (sha256). c2vm writes it on every command line of a --verity
	// output (the UKI's .cmdline, qemu.sh, libvirt.xml, xl.cfg,
	// firecracker.json, c2vm run), beside the boot plan's own copy. It can
	// only make the check stricter, never weaker (Args.RootHashFor):
	//   - plan verity, no c2vm.roothash: the plan's hash is checked;
	//   - both, equal: checked; different: the boot stops, naming
	//     dm-verity and both hashes, before the root is mounted;
	//   - plan verity without a hash: the command line's is checked (a
	//     plan may leave the hash to a signed command line);
	//   - c2vm.roothash without a verity step in the plan: the boot stops,
	//     as the root would be mounted unchecked while the command line
	//     asks for a check;
	//   - c2vm.roothash twice with different values: a parse error.
	ArgRootHash = "c2vm.roothash"
)

// Share is a host directory the hypervisor exports (virtiofs or 9p, by
// tag) for the Shares step to mount at Path.
type Share struct {
	Tag      string
	FSType   string // "virtiofs" or "9p"
	Path     string
	ReadOnly bool
}

func (s Share) arg() string {
	v := ArgShare + "=" + s.Tag + "," + s.FSType + "," + s.Path
	if s.ReadOnly {
		v += ",ro"
	}
	return v
}

func parseShare(v string) (Share, error) {
	f := strings.Split(v, ",")
	if len(f) < 3 || len(f) > 4 || f[0] == "" || (f[1] != "virtiofs" && f[1] != "9p") ||
		!strings.HasPrefix(f[2], "/") || len(f) == 4 && f[3] != "ro" {
		return Share{}, fmt.Errorf("%s=%s: want TAG,virtiofs|9p,/PATH[,ro]", ArgShare, v)
	}
	return Share{Tag: f[0], FSType: f[1], Path: f[2], ReadOnly: len(f) == 4}, nil
}

// Args holds the c2vm.* kernel arguments.
type Args struct {
	Cmd    []string
	Env    []string
	Debug  bool
	Net    string
	Shares []Share
	// RootHash is c2vm.roothash, lower-case hex; "" when absent.
	RootHash string
	// Idle is c2vm.idle; 0 when absent (no idle stop).
	Idle time.Duration
}

// String formats a as kernel arguments, the inverse of ParseArgs.
func (a Args) String() string {
	var out []string
	if a.Debug {
		out = append(out, ArgDebug+"=1")
	}
	if a.Cmd != nil {
		b, _ := json.Marshal(a.Cmd)
		out = append(out, ArgCmd+"="+base64.StdEncoding.EncodeToString(b))
	}
	if a.Net != "" {
		out = append(out, ArgNet+"="+a.Net)
	}
	for _, sh := range a.Shares {
		out = append(out, sh.arg())
	}
	if a.RootHash != "" {
		out = append(out, ArgRootHash+"="+a.RootHash)
	}
	if a.Idle > 0 {
		out = append(out, ArgIdle+"="+a.Idle.String())
	}
	for _, kv := range a.Env {
		// base64 keeps spaces and quotes out of the kernel's parser; the
		// unpadded URL alphabet has no '=' that would read as K=V.
		out = append(out, ArgEnv+"="+base64.RawURLEncoding.EncodeToString([]byte(kv)))
	}
	return strings.Join(out, " ")
}

// ParseArgs reads the c2vm.* parameters of a kernel command line;
// others are ignored. A malformed value is an error naming the parameter.
func ParseArgs(cmdline string) (Args, error) {
	var a Args
	for _, f := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case ArgCmd:
			b, err := decodeBase64(v)
			if err != nil {
				return a, fmt.Errorf("%s: not base64: %w", ArgCmd, err)
			}
			if err := json.Unmarshal(b, &a.Cmd); err != nil {
				return a, fmt.Errorf("%s: not a JSON array of strings: %w", ArgCmd, err)
			}
		case ArgEnv:
			if !strings.Contains(v, "=") {
				b, err := decodeBase64(v)
				if err != nil || !strings.Contains(string(b), "=") {
					return a, fmt.Errorf("%s=%s: want K=V or base64 of K=V", ArgEnv, v)
				}
				v = string(b)
			}
			a.Env = append(a.Env, v)
		case ArgDebug:
			a.Debug = v == "1" || v == "true" || v == ""
		case ArgShare:
			sh, err := parseShare(v)
			if err != nil {
				return a, err
			}
			a.Shares = append(a.Shares, sh)
		case ArgNet:
			if v != NetUser && v != NetDHCP && v != NetNone {
				return a, fmt.Errorf("%s=%s: want %s, %s or %s", ArgNet, v, NetUser, NetDHCP, NetNone)
			}
			a.Net = v
		case ArgIdle:
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return a, fmt.Errorf("%s=%s: want a positive duration (90s, 5m)", ArgIdle, v)
			}
			a.Idle = d
		case ArgRootHash:
			h, err := parseRootHash(v)
			if err != nil {
				return a, err
			}
			if a.RootHash != "" && a.RootHash != h {
				return a, fmt.Errorf("%s given twice (%s and %s): two dm-verity root hashes for one root", ArgRootHash, a.RootHash, h)
			}
			a.RootHash = h
		}
	}
	return a, nil
}

// parseRootHash checks a c2vm.roothash value: a sha256 digest in hex,
// as veritysetup prints it (either case), returned in lower case.
func parseRootHash(v string) (string, error) {
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("%s=%s: want the dm-verity root hash, %d hex digits", ArgRootHash, v, 2*sha256.Size)
	}
	return hex.EncodeToString(b), nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%q", s)
}

// DefaultPath is the PATH a process gets when its env has none, as Docker
// and runc give it.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// MergeEnv returns env with overrides applied as Docker applies --env:
// a key already there is replaced in place, a new one appended.
func MergeEnv(env, overrides []string) []string {
	out := append([]string{}, env...)
	for _, kv := range overrides {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, e := range out {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}
