package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/c2vm/c2vm/cli"
	"github.com/c2vm/c2vm/internal/fixtures"
)

// The bad-input corpus: every case is built here in code (no committed
// binaries), converted by the real CLI in-process, and must end in a
// non-zero exit with one short line naming the problem, no panic, nothing
// left beside the output, memory bounded and well within its deadline.
// Cases marked rootfs are decided by the flattener's path semantics (which
// follow containerd's): for them only what is stable is asserted — no
// panic, nothing left behind, and either success or one line.

// Bounds every case is held to. The hostile-input run that found these
// inputs saw the heap pass 1.5 GiB; the deadline is a hang detector (a
// case that reaches it fails), not a speed assertion.
const (
	maxCaseHeap  = 512 << 20
	caseDeadline = 3 * time.Minute
)

type badInput struct {
	name   string
	build  func(t *testing.T, o *badOCI) string // returns the IMAGE argument
	want   string                               // in the one-line error
	rootfs bool                                 // decided by rootfs: success or one line
	ok     bool                                 // must convert (containerd applies it)
	args   []string                             // extra convert flags
}

func TestBadInputCorpus(t *testing.T) {
	cases := badInputs()
	if len(cases) < 60 {
		t.Fatalf("corpus has %d cases, want at least 60", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.build(t, newBadOCI(t))
			parent := t.TempDir()
			out := filepath.Join(parent, "vm")
			args := append(append([]string{"convert", "-q", "--no-kernel"}, tc.args...), ref, "-o", out)
			code, stderr, peak, ctxErr := runMeasured(t, args)
			if ctxErr != nil {
				t.Fatalf("still running at the %v deadline: %v", caseDeadline, ctxErr)
			}
			if peak > maxCaseHeap {
				t.Errorf("heap peaked at %d MiB, bound %d MiB", peak>>20, maxCaseHeap>>20)
			}
			t.Logf("exit %d, heap peak %d MiB: %s", code, peak>>20, strings.TrimSpace(stderr))
			if tc.ok {
				if code != 0 {
					t.Fatalf("exit %d, want success as containerd applies it: %s", code, stderr)
				}
			} else {
				checkOneLine(t, code, stderr, tc.want, tc.rootfs)
			}
			checkNothingLeft(t, parent, code == 0)
		})
	}
}

// runMeasured runs the CLI in-process under the case deadline, sampling
// the heap while it runs, and turns a panic into a test failure.
func runMeasured(t *testing.T, args []string) (code int, stderr string, peak uint64, ctxErr error) {
	t.Helper()
	runtime.GC()
	stop := make(chan struct{})
	peakc := make(chan uint64)
	go samplePeak(stop, peakc)
	ctx, cancel := context.WithTimeout(context.Background(), caseDeadline)
	defer cancel()
	var so, se bytes.Buffer
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("panic: %v", r)
				code = -1
			}
		}()
		code = cli.Main(ctx, args, &so, &se)
	}()
	close(stop)
	return code, se.String(), <-peakc, ctx.Err()
}

// samplePeak reports the largest live heap seen until stop is closed.
func samplePeak(stop <-chan struct{}, peak chan<- uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var max uint64
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > max {
			max = v
		}
		select {
		case <-stop:
			peak <- max
			return
		case <-tick.C:
		}
	}
}

func checkOneLine(t *testing.T, code int, stderr, want string, rootfsDecided bool) {
	t.Helper()
	if code == 0 {
		if !rootfsDecided {
			t.Errorf("exit 0, want a failure naming %q", want)
		}
		return
	}
	line := strings.TrimSpace(stderr)
	switch {
	case strings.Contains(line, "\n"):
		t.Errorf("exit %d with more than one line: %q", code, stderr)
	case !strings.HasPrefix(line, "c2vm: "):
		t.Errorf("exit %d, stderr %q: want one c2vm: line", code, stderr)
	case len(line) > 600:
		t.Errorf("exit %d, a %d-byte line is not short: %q", code, len(line), line)
	case !strings.Contains(line, want):
		t.Errorf("exit %d, stderr %q: want %q in it", code, line, want)
	}
}

// checkNothingLeft: beside the output directory (on success) nothing,
// in particular no .tmp-* staging directory.
func checkNothingLeft(t *testing.T, parent string, succeeded bool) {
	t.Helper()
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if succeeded && e.Name() == "vm" {
			continue
		}
		t.Errorf("left behind: %s", e.Name())
	}
}

// pathCase is a case whose IMAGE is a path made by mk in a fresh dir.
func pathCase(name, want string, mk func(t *testing.T, p string)) badInput {
	return badInput{name: "input/" + name, want: want, build: func(t *testing.T, _ *badOCI) string {
		p := filepath.Join(t.TempDir(), "image")
		mk(t, p)
		return p
	}}
}

// oddTar is a case whose one gzip layer is the tar write makes, decided by
// the flattener.
func oddTar(name string, raw []byte) badInput {
	return badInput{name: "tar/" + name, rootfs: true, build: func(t *testing.T, o *badOCI) string {
		return o.simple(edits{}, gzLayer(raw))
	}}
}

// tarOK is a layer containerd applies (inside the root), and so must c2vm.
func tarOK(name string, raw []byte) badInput {
	c := oddTar(name, raw)
	c.rootfs, c.ok = false, true
	return c
}

// tarErr is a layer containerd refuses, or no Linux filesystem can hold.
func tarErr(name, want string, raw []byte) badInput {
	c := oddTar(name, raw)
	c.rootfs, c.want = false, want
	return c
}

// badTar is a layer tar archive/tar itself rejects, whatever rootfs does.
func badTar(name, want string, raw []byte) badInput {
	return badInput{name: "tar/" + name, want: want, build: func(t *testing.T, o *badOCI) string {
		return o.simple(edits{}, gzLayer(raw))
	}}
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func badInputs() []badInput {
	badDigest := func(d digest.Digest) func(*ocispec.Manifest) {
		return func(m *ocispec.Manifest) { m.Layers[0].Digest = d }
	}
	var cases []badInput
	add := func(c ...badInput) { cases = append(cases, c...) }

	// Inputs that are not images at all.
	add(
		pathCase("empty file", "not an image", func(t *testing.T, p string) { writeFile(t, p, nil) }),
		pathCase("empty directory", "not an image", func(t *testing.T, p string) { os.Mkdir(p, 0o755) }),
		pathCase("fifo", "named pipe", func(t *testing.T, p string) { makeSpecial(p, "fifo") }),
		pathCase("symlink to /dev/zero", "character device", func(t *testing.T, p string) { makeSpecial(p, "/dev/zero") }),
		pathCase("symlink to /dev/urandom", "character device", func(t *testing.T, p string) { makeSpecial(p, "/dev/urandom") }),
		pathCase("missing path", "no such file", func(t *testing.T, p string) {}),
		pathCase("random bytes", "not an image", func(t *testing.T, p string) { writeFile(t, p, bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 4096)) }),
		pathCase("tar of other files", "not an image", func(t *testing.T, p string) {
			writeFile(t, p, tarOf(func(tw *tar.Writer) {
				tw.WriteHeader(&tar.Header{Name: "README", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
				tw.Write([]byte("hi"))
			}))
		}),
		pathCase("gzip, not tar", "not an image", func(t *testing.T, p string) { writeFile(t, p, gzipBytes(files())) }),
		pathCase("archive cut short", "not an image", func(t *testing.T, p string) {
			b := newLegacy(files()).archive(t)
			raw, _ := os.ReadFile(b)
			writeFile(t, p, raw[:len(raw)/2+100])
		}),
		badInput{name: "input/oci: on a file", want: "wants a layout directory", build: func(t *testing.T, o *badOCI) string {
			return "oci:" + newLegacy(files()).archive(t)
		}},
		badInput{name: "input/docker-archive: on a directory", want: "a directory, not a docker-archive", build: func(t *testing.T, o *badOCI) string {
			return "docker-archive:" + o.simple(edits{}, gzLayer(files()))
		}},
	)

	// index.json and nested indexes.
	add(
		badInput{name: "index/not json", want: "index.json: not an image", build: func(t *testing.T, o *badOCI) string {
			o.file("index.json", []byte("{\"manifests\": [")) // cut short
			return o.dir
		}},
		badInput{name: "index/over 4 MiB", want: "limit for a JSON document", build: func(t *testing.T, o *badOCI) string {
			o.file("index.json", append([]byte(`{"manifests":[],"x":"`), bytes.Repeat([]byte("a"), 5<<20)...))
			return o.dir
		}},
		badInput{name: "index/nested 100000 deep", want: "max depth", build: func(t *testing.T, o *badOCI) string {
			o.file("index.json", []byte(`{"annotations":`+strings.Repeat("[", 100000)+strings.Repeat("]", 100000)+`}`))
			return o.dir
		}},
		badInput{name: "index/fifo", want: "named pipe", build: func(t *testing.T, o *badOCI) string {
			os.MkdirAll(o.dir, 0o755)
			makeSpecial(filepath.Join(o.dir, "index.json"), "fifo")
			return o.dir
		}},
		badInput{name: "index/symlink to /dev/zero", want: "character device", build: func(t *testing.T, o *badOCI) string {
			makeSpecial(filepath.Join(o.dir, "index.json"), "/dev/zero")
			return o.dir
		}},
		badInput{name: "index/no manifests", want: "lists no image manifest", build: func(t *testing.T, o *badOCI) string { return o.index() }},
		badInput{name: "index/digest without colon", want: `digest "sha256deadbeef"`, build: func(t *testing.T, o *badOCI) string {
			return o.index(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256deadbeef", Size: 2})
		}},
		badInput{name: "index/unknown digest algorithm", want: "unsupported digest algorithm", build: func(t *testing.T, o *badOCI) string {
			return o.index(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "md5:d41d8cd98f00b204e9800998ecf8427e", Size: 2})
		}},
		badInput{name: "index/escaping digest", want: "invalid checksum digest", build: func(t *testing.T, o *badOCI) string {
			return o.index(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:../../../../etc/passwd", Size: 2})
		}},
		badInput{name: "index/negative size", want: "size -1", build: func(t *testing.T, o *badOCI) string {
			d, _ := o.image(edits{}, gzLayer(files()))
			d.Size = -1
			return o.index(d)
		}},
		badInput{name: "index/missing manifest", want: "missing blob", build: func(t *testing.T, o *badOCI) string {
			d, _ := o.image(edits{}, gzLayer(files()))
			os.Remove(o.blobPath(d))
			return o.index(d)
		}},
		badInput{name: "index/nested 9 deep", want: "nested more than", build: func(t *testing.T, o *badOCI) string {
			d, _ := o.image(edits{}, gzLayer(files()))
			for range 9 {
				d = o.nested(d)
			}
			return o.index(d)
		}},
		badInput{name: "index/fans out as a DAG", want: "fans out", build: func(t *testing.T, o *badOCI) string {
			// 64 entries a level, each with its own platform so none is
			// a repeat, all naming the next level: 64^4 paths.
			d, _ := o.image(edits{}, gzLayer(files()))
			for range 4 {
				var ds []ocispec.Descriptor
				for i := range 64 {
					c := d
					c.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: fmt.Sprint("v", i)}
					ds = append(ds, c)
				}
				d = o.nested(ds...)
			}
			return o.index(d)
		}},
		badInput{name: "index/nested index corrupt", want: "digest mismatch", build: func(t *testing.T, o *badOCI) string {
			d, _ := o.image(edits{}, gzLayer(files()))
			n := o.nested(d)
			o.replace(n, flipMiddle)
			return o.index(n)
		}},
		badInput{name: "index/nested index claims 5 MiB", want: "limit for a JSON document", build: func(t *testing.T, o *badOCI) string {
			d, _ := o.image(edits{}, gzLayer(files()))
			n := o.nested(d)
			n.Size = 5 << 20
			return o.index(n)
		}},
		badInput{name: "index/docker schema 1", want: "schema 1", build: func(t *testing.T, o *badOCI) string {
			d := o.blob("application/vnd.docker.distribution.manifest.v1+prettyjws", []byte(`{"schemaVersion":1}`))
			return o.index(d)
		}},
		badInput{name: "index/only attestations", want: "lists no image manifest", build: func(t *testing.T, o *badOCI) string {
			d, _ := o.image(edits{}, gzLayer(files()))
			d.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
			return o.index(d)
		}},
		badInput{name: "index/two names, none asked", want: "ambiguous", build: func(t *testing.T, o *badOCI) string {
			a, _ := o.image(edits{}, gzLayer(files()))
			b := a
			a.Annotations = map[string]string{ocispec.AnnotationRefName: "one"}
			b.Annotations = map[string]string{ocispec.AnnotationRefName: "two"}
			return o.index(a, b)
		}},
		badInput{name: "index/no such name", want: `no image named "three"`, build: func(t *testing.T, o *badOCI) string {
			a, _ := o.image(edits{}, gzLayer(files()))
			a.Annotations = map[string]string{ocispec.AnnotationRefName: "one"}
			return "oci:" + o.index(a) + ":three"
		}},
		badInput{name: "index/windows only", want: "no linux platform; the image offers windows/amd64", build: func(t *testing.T, o *badOCI) string {
			d, _ := o.image(edits{cfg: func(c *ocispec.Image) { c.OS = "windows"; c.Architecture = "amd64" }}, gzLayer(files()))
			return o.index(d)
		}},
		badInput{name: "index/platform not offered", want: "no manifest for linux/s390x", args: []string{"--platform", "linux/s390x"}, build: func(t *testing.T, o *badOCI) string {
			return o.simple(edits{}, gzLayer(files()))
		}},
	)

	// Manifests.
	manifestCase := func(name, want string, damage func(o *badOCI, d ocispec.Descriptor) ocispec.Descriptor) badInput {
		return badInput{name: "manifest/" + name, want: want, build: func(t *testing.T, o *badOCI) string {
			d, _ := o.image(edits{}, gzLayer(files()))
			return o.index(damage(o, d))
		}}
	}
	add(
		manifestCase("not json", "corrupt data", func(o *badOCI, _ ocispec.Descriptor) ocispec.Descriptor {
			return o.blob(ocispec.MediaTypeImageManifest, []byte("{not json"))
		}),
		manifestCase("one byte flipped", "digest mismatch", func(o *badOCI, d ocispec.Descriptor) ocispec.Descriptor {
			o.replace(d, flipMiddle)
			return d
		}),
		manifestCase("size lie", "digest mismatch", func(o *badOCI, d ocispec.Descriptor) ocispec.Descriptor {
			d.Size--
			return d
		}),
		manifestCase("claims 5 MiB", "limit for a JSON document", func(o *badOCI, d ocispec.Descriptor) ocispec.Descriptor {
			d.Size = 5 << 20
			return d
		}),
		manifestCase("fifo", "named pipe", func(o *badOCI, d ocispec.Descriptor) ocispec.Descriptor {
			o.special(d, "fifo")
			return d
		}),
		manifestCase("symlink to /dev/urandom", "character device", func(o *badOCI, d ocispec.Descriptor) ocispec.Descriptor {
			o.special(d, "/dev/urandom")
			return d
		}),
	)
	manifestEdit := func(name, want string, e func(*ocispec.Manifest)) badInput {
		return badInput{name: "manifest/" + name, want: want, build: func(t *testing.T, o *badOCI) string {
			return o.simple(edits{manifest: e}, gzLayer(files()))
		}}
	}
	add(
		manifestEdit("layer digest without colon", `digest "nocolon"`, badDigest("nocolon")),
		manifestEdit("layer digest unknown algorithm", "unsupported digest algorithm", badDigest("sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709")),
		manifestEdit("layer size -1", "size -1", func(m *ocispec.Manifest) { m.Layers[0].Size = -1 }),
		manifestEdit("layer missing", "missing blob", badDigest(digest.FromString("absent"))),
		manifestEdit("2000 layers", "over the limit of", func(m *ocispec.Manifest) {
			for len(m.Layers) < 2000 {
				m.Layers = append(m.Layers, m.Layers[0])
			}
		}),
		manifestEdit("config missing", "missing blob", func(m *ocispec.Manifest) { m.Config.Digest = digest.FromString("absent") }),
		manifestEdit("config size -1", "size -1", func(m *ocispec.Manifest) { m.Config.Size = -1 }),
		manifestEdit("config digest without colon", `digest "x"`, func(m *ocispec.Manifest) { m.Config.Digest = "x" }),
		manifestEdit("more layers than diff_ids", "diff_ids", func(m *ocispec.Manifest) { m.Layers = append(m.Layers, m.Layers[0]) }),
	)

	// Configs.
	cfgEdit := func(name, want string, e func(*ocispec.Image)) badInput {
		return badInput{name: "config/" + name, want: want, build: func(t *testing.T, o *badOCI) string {
			return o.simple(edits{cfg: e}, gzLayer(files()))
		}}
	}
	add(
		cfgEdit("diff_id without colon", `diff_id 1: digest "abc"`, func(c *ocispec.Image) { c.RootFS.DiffIDs[0] = "abc" }),
		cfgEdit("diff_id unknown algorithm", "diff_id 1", func(c *ocispec.Image) { c.RootFS.DiffIDs[0] = "blake9:abcd" }),
		cfgEdit("diff_id empty", "diff_id 1", func(c *ocispec.Image) { c.RootFS.DiffIDs[0] = "" }),
		cfgEdit("diff_id of other bytes", "diff_id", func(c *ocispec.Image) { c.RootFS.DiffIDs[0] = digest.FromString("other") }),
		badInput{name: "config/not json", want: "corrupt data", build: func(t *testing.T, o *badOCI) string {
			return o.simple(edits{manifest: func(m *ocispec.Manifest) { m.Config = o.blob(ocispec.MediaTypeImageConfig, []byte("[1,2")) }}, gzLayer(files()))
		}},
		badInput{name: "config/one byte flipped", want: "digest mismatch", build: func(t *testing.T, o *badOCI) string {
			d, m := o.image(edits{}, gzLayer(files()))
			o.replace(m.Config, flipMiddle)
			return o.index(d)
		}},
		badInput{name: "config/fifo", want: "named pipe", build: func(t *testing.T, o *badOCI) string {
			d, m := o.image(edits{}, gzLayer(files()))
			o.special(m.Config, "fifo")
			return o.index(d)
		}},
		badInput{name: "config/over 4 MiB", want: "limit for a JSON document", build: func(t *testing.T, o *badOCI) string {
			big := strings.Repeat("x", 5<<20)
			return o.simple(edits{cfg: func(c *ocispec.Image) { c.Config.Labels = map[string]string{"big": big} }}, gzLayer(files()))
		}},
	)

	// Layer blobs.
	layerCase := func(name, want string, l layer, damage func(o *badOCI, m ocispec.Manifest)) badInput {
		return badInput{name: "layer/" + name, want: want, build: func(t *testing.T, o *badOCI) string {
			d, m := o.image(edits{}, l)
			if damage != nil {
				damage(o, m)
			}
			return o.index(d)
		}}
	}
	flip := func(o *badOCI, m ocispec.Manifest) { o.replace(m.Layers[0], flipMiddle) }
	add(
		layerCase("gzip, one byte flipped", "digest mismatch: got sha256:", gzLayer(files()), flip),
		layerCase("zstd, one byte flipped", "digest mismatch: got sha256:", zstdLayer(files()), flip),
		layerCase("plain tar, one byte flipped", "digest mismatch: got sha256:", plainLayer(files()), flip),
		layerCase("truncated", "digest mismatch", gzLayer(files()), func(o *badOCI, m ocispec.Manifest) {
			o.replace(m.Layers[0], func(b []byte) []byte { return b[:len(b)/2] })
		}),
		layerCase("longer than declared", "digest mismatch", gzLayer(files()), func(o *badOCI, m ocispec.Manifest) {
			o.replace(m.Layers[0], func(b []byte) []byte { return append(b, 0) })
		}),
		layerCase("fifo", "named pipe", gzLayer(files()), func(o *badOCI, m ocispec.Manifest) { o.special(m.Layers[0], "fifo") }),
		layerCase("symlink to /dev/zero", "character device", gzLayer(files()), func(o *badOCI, m ocispec.Manifest) { o.special(m.Layers[0], "/dev/zero") }),
		layerCase("symlink to /dev/urandom", "character device", gzLayer(files()), func(o *badOCI, m ocispec.Manifest) { o.special(m.Layers[0], "/dev/urandom") }),
		layerCase("directory", "directory", gzLayer(files()), func(o *badOCI, m ocispec.Manifest) {
			os.Remove(o.blobPath(m.Layers[0]))
			os.Mkdir(o.blobPath(m.Layers[0]), 0o755)
		}),
		// The blob is what its digest says, but its gzip is damaged: the
		// deflate data decodes to garbage before the CRC at the end could
		// tell, so the tar it should hold is what fails.
		layerCase("corrupt gzip, digest agrees", "invalid tar header", layer{flipMiddle(gzipBytes(files())), digest.FromBytes(files())}, nil),
		layerCase("gzip header only", "gzip", layer{gzipBytes(files())[:12], digest.FromBytes(files())}, nil),
		layerCase("zstd window of 2 GiB", "window", layer{[]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8, 0x01, 0x00, 0x00}, digest.FromString("x")}, nil),
		layerCase("not a tar", "tar", plainLayer(bytes.Repeat([]byte("not a tar "), 100)), nil),
		layerCase("gzip bomb", "decompression bomb", layer{gzipBomb(40<<30, 3<<10), digest.FromString("bomb")}, nil),
		layerCase("zstd bomb of 40 GiB", "decompression bomb", layer{zstdBomb(40 << 30), digest.FromString("bomb")}, nil),
	)

	// `docker save` archives.
	legacyCase := func(name, want string, edit func(l legacy)) badInput {
		return badInput{name: "docker-save/" + name, want: want, build: func(t *testing.T, _ *badOCI) string {
			l := newLegacy(files())
			edit(l)
			return l.archive(t)
		}}
	}
	setManifest := func(s string) func(l legacy) { return func(l legacy) { l["manifest.json"] = []byte(s) } }
	add(
		legacyCase("manifest.json not json", "manifest.json: not an image", setManifest("[{")),
		legacyCase("manifest.json an object", "cannot unmarshal object", setManifest(`{"Config":"x"}`)),
		legacyCase("manifest.json empty list", "lists no image", setManifest("[]")),
		legacyCase("manifest.json null", "lists no image", setManifest("null")),
		legacyCase("entry without Config", "has no Config", setManifest(`[{"Layers":[]}]`)),
		legacyCase("Config escaping", "escapes the image", setManifest(`[{"Config":"../../etc/passwd","Layers":[]}]`)),
		legacyCase("layer absolute", "escapes the image", func(l legacy) {
			l["manifest.json"] = []byte(fmt.Sprintf(`[{"Config":%q,"Layers":["/etc/passwd"]}]`, l.config()))
		}),
		legacyCase("layer empty name", "escapes the image", func(l legacy) {
			l["manifest.json"] = []byte(fmt.Sprintf(`[{"Config":%q,"Layers":[""]}]`, l.config()))
		}),
		legacyCase("config missing", "missing blob", func(l legacy) { delete(l, l.config()) }),
		legacyCase("config digest mismatch", "digest mismatch", func(l legacy) { l[l.config()] = append(l[l.config()], ' ') }),
		legacyCase("layers and diff_ids differ", "diff_ids", func(l legacy) {
			l.setConfig(func(c *ocispec.Image) { c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, c.RootFS.DiffIDs[0]) })
		}),
		legacyCase("layer missing", "missing blob", func(l legacy) { delete(l, "l0/layer.tar") }),
		legacyCase("diff_id without colon", "diff_id 1", func(l legacy) {
			l.setConfig(func(c *ocispec.Image) { c.RootFS.DiffIDs[0] = "nocolon" })
		}),
		legacyCase("layer one byte flipped", "digest mismatch", func(l legacy) { flipMiddle(l["l0/layer.tar"]) }),
		legacyCase("manifest.json over 4 MiB", "limit for a JSON document", func(l legacy) {
			l["manifest.json"] = append(bytes.TrimSuffix(l["manifest.json"], []byte("]")), []byte(`,{"Config":"`+strings.Repeat("a", 5<<20)+`"}]`)...)
		}),
		legacyCase("two images, none named", "ambiguous", func(l legacy) {
			l["manifest.json"] = bytes.Replace(l["manifest.json"], []byte("["), []byte("["+strings.TrimSuffix(strings.TrimPrefix(string(l["manifest.json"]), "["), "]")+","), 1)
		}),
		legacyCase("windows only", "no linux platform", func(l legacy) {
			l.setConfig(func(c *ocispec.Image) { c.OS = "windows" })
		}),
		badInput{name: "docker-save/index out of range", want: "no such image", build: func(t *testing.T, _ *badOCI) string {
			return "docker-archive:" + newLegacy(files()).archive(t) + ":@5"
		}},
	)

	// Tar oddities inside a layer. What archive/tar rejects is an error
	// whatever the flattener does; the rest is the flattener's call.
	hdr := func(h *tar.Header, body string) func(tw *tar.Writer) {
		return func(tw *tar.Writer) {
			h.Size = int64(len(body))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
			tw.WriteHeader(h)
			tw.Write([]byte(body))
		}
	}
	one := func(h *tar.Header, body string) []byte { return tarOf(hdr(h, body)) }
	add(
		badTar("bad header checksum", "tar", func() []byte {
			b := rawTar(ustar("f", '0', []byte("x"), nil))
			b[0] = 'g' // after the checksum was computed
			return b
		}()),
		badTar("PAX record length lie", "tar", rawTar(ustar("pax", 'x', []byte("999 path=evil\n"), nil), ustar("f", '0', []byte("x"), nil))),
		badTar("PAX size not a number", "tar", rawTar(ustar("pax", 'x', []byte(paxRecord("size", "-5")), nil), ustar("f", '0', []byte("x"), nil))),
		badTar("negative size in base-256", "tar", rawTar(ustar("f", '0', nil, func(h []byte) {
			for i := 124; i < 136; i++ {
				h[i] = 0xff
			}
		}))),
		badTar("size past the end", "tar", rawTar(ustar("f", '0', nil, func(h []byte) { copy(h[124:136], "00000100000\x00") }))),
		tarOK("traversal ../../escape", one(&tar.Header{Name: "../../escape", Typeflag: tar.TypeReg}, "x")),
		tarOK("absolute name", one(&tar.Header{Name: "/etc/abs", Typeflag: tar.TypeReg}, "x")),
		tarErr("path component of 300 bytes", "file name too long", one(&tar.Header{Name: strings.Repeat("a", 300), Typeflag: tar.TypeReg}, "x")),
		tarErr("path of 5000 bytes", "file name too long", one(&tar.Header{Name: strings.Repeat("d/", 2500) + "f", Typeflag: tar.TypeReg}, "x")),
		tarOK("PAX path lies about the name", rawTar(ustar("pax", 'x', []byte(paxRecord("path", "../../pax-escape")), nil), ustar("innocent", '0', []byte("x"), nil))),
		tarErr("old GNU sparse", "sparse tar entries are not supported", rawTar(ustar("sparse", 'S', []byte("data"), func(h []byte) {
			copy(h[257:265], "ustar  \x00")     // GNU magic
			copy(h[386:398], "00000000000\x00") // sparse[0].offset
			copy(h[398:410], "00000000004\x00") // sparse[0].numbytes
			copy(h[483:495], "00000010000\x00") // realsize 4096
		}))),
		tarErr("unknown typeflag Z", "unsupported tar entry type 'Z'", rawTar(ustar("odd", 'Z', []byte("x"), nil))),
		tarOK("GNU contiguous file (type 7)", rawTar(ustar("cont", '7', []byte("contiguous"), nil))),
		tarOK("char and block devices", tarOf(func(tw *tar.Writer) {
			hdr(&tar.Header{Name: "dev/", Typeflag: tar.TypeDir, Mode: 0o755}, "")(tw)
			hdr(&tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8}, "")(tw)
			hdr(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}, "")(tw)
		})),
		tarErr("uid 2^32 on a setuid file", "uid 4294967296 does not fit 32 bits", one(&tar.Header{Name: "suid", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 1 << 32, Gid: 1 << 32}, "x")),
		tarOK("duplicate entries", tarOf(func(tw *tar.Writer) {
			hdr(&tar.Header{Name: "dup", Typeflag: tar.TypeReg}, "one")(tw)
			hdr(&tar.Header{Name: "dup", Typeflag: tar.TypeReg}, "two")(tw)
			hdr(&tar.Header{Name: "dup", Typeflag: tar.TypeDir, Mode: 0o755}, "")(tw)
		})),
		tarErr("hardlink to ../../etc/passwd (clamped at the root: absent)", "hard link target \"../../etc/passwd\" does not exist", one(&tar.Header{Name: "link", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}, "")),
		tarErr("hardlink to a missing file", "does not exist", one(&tar.Header{Name: "link", Typeflag: tar.TypeLink, Linkname: "absent"}, "")),
		tarOK("write through a symlinked parent", tarOf(func(tw *tar.Writer) {
			hdr(&tar.Header{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755}, "")(tw)
			hdr(&tar.Header{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin"}, "")(tw)
			hdr(&tar.Header{Name: "bin/x", Typeflag: tar.TypeReg}, "x")(tw)
		})),
		tarErr("symlink loop as a parent", "too many levels of symbolic links", tarOf(func(tw *tar.Writer) {
			hdr(&tar.Header{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "b"}, "")(tw)
			hdr(&tar.Header{Name: "b", Typeflag: tar.TypeSymlink, Linkname: "a"}, "")(tw)
			hdr(&tar.Header{Name: "a/x", Typeflag: tar.TypeReg}, "x")(tw)
		})),
		tarErr("whiteout of the root's parent", "invalid whiteout name", one(&tar.Header{Name: ".wh..", Typeflag: tar.TypeReg}, "")),
		tarOK("data past the end blocks", append(files(), bytes.Repeat([]byte("trailing garbage"), 64)...)),
	)
	return cases
}

// TestBadInputUnreadable: a path the user may not read is reported as
// "permission denied", not as "not an image". Root reads everything, so
// as root the CLI runs as nobody (a copy of this test binary, by setpriv).
func TestBadInputUnreadable(t *testing.T) {
	for _, tc := range []struct {
		name string
		mk   func(t *testing.T, o *badOCI) string
	}{
		{"directory without search permission", func(t *testing.T, o *badOCI) string {
			ref := o.simple(edits{}, gzLayer(files()))
			os.Chmod(ref, 0o600)
			return ref
		}},
		{"archive without read permission", func(t *testing.T, o *badOCI) string {
			b, _ := os.ReadFile(newLegacy(files()).archive(t))
			p := o.dir + ".tar"
			writeFile(t, p, b)
			os.Chmod(p, 0o200)
			return p
		}},
		{"blob without read permission", func(t *testing.T, o *badOCI) string {
			d, m := o.image(edits{}, gzLayer(files()))
			os.Chmod(o.blobPath(m.Layers[0]), 0)
			return o.index(d)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := worldDir(t)
			o := &badOCI{t: t, dir: filepath.Join(work, "img")}
			o.file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
			ref := tc.mk(t, o)
			parent := filepath.Join(work, "out")
			os.Mkdir(parent, 0o777)
			os.Chmod(parent, 0o777)
			args := []string{"convert", "-q", "--no-kernel", ref, "-o", filepath.Join(parent, "vm")}
			code, stderr := runUnprivileged(t, work, args)
			t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
			checkOneLine(t, code, stderr, "permission denied", false)
			checkNothingLeft(t, parent, false)
		})
	}
}

// worldDir is a temp dir every user can enter (t.TempDir's are 0700).
func worldDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "c2vm-badinput-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("chmod", "-R", "u+rwX", d).Run(); os.RemoveAll(d) })
	os.Chmod(d, 0o755)
	return d
}

// runUnprivileged runs the CLI in-process when the user is not root, else
// as nobody through a copy of this test binary (TestBadInputChild).
func runUnprivileged(t *testing.T, work string, args []string) (int, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return c2vm(t, args...)
	}
	fixtures.NeedTools(t, "setpriv")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, "e2e.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(work, "tmp") // for the child's TestMain
	os.Mkdir(tmp, 0o777)
	os.Chmod(tmp, 0o777)
	enc, _ := json.Marshal(args)
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "-test.run=^TestBadInputChild$")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + tmp, "TMPDIR=" + tmp, "C2VM_BADINPUT_ARGS=" + string(enc)}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// TestBadInputChild is the unprivileged side of runUnprivileged: it runs
// the CLI with the arguments it is given and exits with its status. Run
// directly, it has nothing to do.
func TestBadInputChild(t *testing.T) {
	enc := os.Getenv("C2VM_BADINPUT_ARGS")
	if enc == "" {
		return
	}
	var args []string
	json.Unmarshal([]byte(enc), &args)
	os.Exit(cli.Main(context.Background(), args, os.Stdout, os.Stderr))
}
