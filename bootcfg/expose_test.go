package bootcfg

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/bootcfg/plan"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func exposing(keys ...string) ocispec.ImageConfig {
	cfg := ocispec.ImageConfig{ExposedPorts: map[string]struct{}{}}
	for _, k := range keys {
		cfg.ExposedPorts[k] = struct{}{}
	}
	return cfg
}

func tcp(n uint16) plan.Port { return plan.Port{Port: n, Proto: "tcp"} }
func udp(n uint16) plan.Port { return plan.Port{Port: n, Proto: "udp"} }

func TestExposed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keys     []string
		want     []plan.Port
		warnings int
	}{
		{name: "none"},
		{name: "sorted", keys: []string{"8080/tcp", "53/udp", "53/tcp", "443/tcp"},
			want: []plan.Port{tcp(53), udp(53), tcp(443), tcp(8080)}},
		{name: "duplicates", keys: []string{"80", "80/tcp", "53/UDP", "53/udp"},
			want: []plan.Port{udp(53), tcp(80)}, warnings: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warnings, err := Exposed(exposing(tc.keys...))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) || len(warnings) != tc.warnings {
				t.Errorf("Exposed(%q) = %v, warnings %q; want %v and %d warnings", tc.keys, got, warnings, tc.want, tc.warnings)
			}
		})
	}
}

// TestExposedRefusesHostileKeys: the keys, and others that would
// reach a shell word, a QEMU option or XML, refuse the image with an
// error naming the key.
func TestExposedRefusesHostileKeys(t *testing.T) {
	for _, key := range []string{
		"8080/tcp;touch /tmp/x",
		"8080,hostfwd=tcp::22-:22",
		"8080/tcp,hostfwd=tcp::22-:22",
		"$(reboot)",
		"80`id`",
		"80/<tcp>",
		"80'",
		"8000-8010",
		"0",
		"65536",
		"80/sctp",
		"80\n",
	} {
		t.Run(key, func(t *testing.T) {
			got, _, err := Exposed(exposing("443/tcp", key))
			if err == nil || !strings.Contains(err.Error(), strconv.Quote(key)) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Exposed(%q) = %v, %v; want a one-line error naming the key", key, got, err)
			}
		})
	}
}

func TestVolume(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/data", "/data"},
		{"/data/", "/data"},
		{"/var/lib/postgresql/data", "/var/lib/postgresql/data"},
		{"/srv/my-app_1.0+x@y", "/srv/my-app_1.0+x@y"},
		{"/a/...", "/a/..."},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Volume(tc.in)
			if err != nil || got != tc.want {
				t.Errorf("Volume(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			if err := ValidateVolume(tc.in); err != nil {
				t.Errorf("ValidateVolume: %v", err)
			}
		})
	}
}

// TestVolumeRefusesHostilePaths: quotes, "..", XML, shell and option
// syntax in a VOLUME are refused, the path named in the error.
func TestVolumeRefusesHostilePaths(t *testing.T) {
	for _, p := range []string{
		"", "/", "data", "./data", "/data/../../etc", "/..", "/data/..", "/a/./b", "/a//b", "/data//",
		`/data"`, "/data'", "/da ta", "/data\n", "/data\x00", "/data\t",
		"/data</source><source file='/etc/shadow'/>", "/a&b", "/a>b",
		"/data;reboot", "/$(reboot)", "/`id`", "/a|b", "/a*", "/a?", "/a!", "/a#b", "/~root", `/a\b`,
		"/data,readonly=off", "/a=b", "/a:b", "/é", "/" + strings.Repeat("a", 4096),
	} {
		t.Run(p, func(t *testing.T) {
			err := ValidateVolume(p)
			if !errors.Is(err, ErrBadVolume) || !strings.Contains(err.Error(), strconv.Quote(p)) {
				t.Errorf("ValidateVolume(%q) = %v; want ErrBadVolume naming the path", p, err)
			}
		})
	}
}
