package convert

import (
	"reflect"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestForwards(t *testing.T) {
	f := func(s string) plan.Forward {
		fw, err := plan.ParseForward(s)
		if err != nil {
			t.Fatal(err)
		}
		return fw
	}
	for _, tc := range []struct {
		name    string
		expose  []string
		o       Options
		want    []plan.Forward
		warning string
		err     string
		exposed int
	}{
		{name: "nothing exposed"},
		{name: "exposed published on loopback", expose: []string{"8080/tcp", "53/udp"},
			want: []plan.Forward{f("127.0.0.1:53:53/udp"), f("127.0.0.1:8080:8080/tcp")}, exposed: 2,
			warning: "port 53/udp is published on host port 53, which only root may bind"},
		{name: "--publish moves a default", expose: []string{"80"}, o: Options{Publish: []plan.Forward{f("8080:80")}},
			want: []plan.Forward{f("127.0.0.1:8080:80/tcp")}, exposed: 1, warning: "read as 80/tcp"},
		{name: "--no-publish", expose: []string{"8080/tcp"}, o: Options{NoPublish: true, Publish: []plan.Forward{f("2222:22")}},
			want: []plan.Forward{f("2222:22")}, exposed: 1},
		{name: "hostile key refused", expose: []string{"8080/tcp;touch /tmp/x"}, err: `"8080/tcp;touch /tmp/x"`},
		{name: "host port twice", o: Options{Publish: []plan.Forward{f("80:80"), f("80:81")}}, err: "published twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var progress strings.Builder
			tc.o.Progress = &progress
			c := &conversion{o: tc.o, img: &image.Image{Config: ocispec.Image{Config: ocispec.ImageConfig{ExposedPorts: map[string]struct{}{}}}}}
			for _, k := range tc.expose {
				c.img.Config.Config.ExposedPorts[k] = struct{}{}
			}
			exposed, got, err := c.forwards()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) || len(exposed) != tc.exposed {
				t.Errorf("got %v %v, %v; want %v and %d exposed", exposed, got, err, tc.want, tc.exposed)
			}
			if !strings.Contains(progress.String(), tc.warning) {
				t.Errorf("progress %q lacks %q", progress.String(), tc.warning)
			}
		})
	}
}
