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
			got, err := CleanVolume(tc.in)
			if err != nil || got != tc.want {
				t.Errorf("CleanVolume(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
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

func fwd(s string) plan.Forward {
	f, err := plan.ParseForward(s)
	if err != nil {
		panic(err)
	}
	return f
}

func fwds(specs ...string) []plan.Forward {
	var out []plan.Forward
	for _, s := range specs {
		out = append(out, fwd(s))
	}
	return out
}

func TestForwards(t *testing.T) {
	for _, tc := range []struct {
		name     string
		base     []plan.Forward
		exposed  []plan.Port
		explicit []plan.Forward
		want     []plan.Forward
		err      string
	}{
		{name: "nothing"},
		{name: "exposed on the same host port", exposed: []plan.Port{udp(53), tcp(8080)},
			want: fwds("127.0.0.1:53:53/udp", "127.0.0.1:8080:8080/tcp")},
		{name: "explicit replaces the default", exposed: []plan.Port{tcp(8080), tcp(9090)}, explicit: fwds("18080:8080"),
			want: fwds("127.0.0.1:9090:9090/tcp", "127.0.0.1:18080:8080/tcp")},
		{name: "udp default kept beside a tcp publish", exposed: []plan.Port{udp(53)}, explicit: fwds("5353:53/tcp"),
			want: fwds("127.0.0.1:53:53/udp", "127.0.0.1:5353:53/tcp")},
		{name: "an unexposed port may be published", explicit: fwds("0.0.0.0:2222:22"), want: fwds("0.0.0.0:2222:22")},
		{name: "one guest port on two host ports", explicit: fwds("8080:80", "8081:80"), want: fwds("8080:80", "8081:80")},
		{name: "base kept, exposed not doubled", base: fwds("18080:8080"), exposed: []plan.Port{tcp(8080)},
			want: fwds("18080:8080")},
		{name: "run -p replaces a converted forward", base: fwds("8080:8080", "9090:9090"), explicit: fwds("18080:8080"),
			want: fwds("9090:9090", "18080:8080")},
		{name: "host port twice", explicit: fwds("8080:80", "8080:81"), err: "host port 8080/tcp is published twice"},
		{name: "host port twice, any address", explicit: fwds("0.0.0.0:8080:80", "127.0.0.1:8080:81"), err: "published twice"},
		{name: "default yields its host port", exposed: []plan.Port{tcp(8080), tcp(80)}, explicit: fwds("8080:80"),
			want: fwds("8080:80")},
		{name: "default yields to a base forward", base: fwds("0.0.0.0:8080:80"), exposed: []plan.Port{tcp(8080)},
			want: fwds("0.0.0.0:8080:80")},
		{name: "same port, other protocol", explicit: fwds("53:53/udp", "53:53/tcp"), want: fwds("53:53/udp", "53:53/tcp")},
		{name: "invalid base", base: []plan.Forward{{HostIP: "x", HostPort: 1, GuestPort: 1, Proto: "tcp"}}, err: "not an IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Forwards(tc.base, tc.exposed, tc.explicit)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
