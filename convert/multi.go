package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/image"
	"github.com/c2vm/c2vm/kernel"
	"github.com/c2vm/c2vm/vmdir"
)

// AllPlatforms is the --platform value asking for every platform.
const AllPlatforms = "all"

// ErrMultiOption is an option that cannot serve several platforms at once.
var ErrMultiOption = errors.New("not with several platforms")

// IsMulti reports whether a --platform value asks for several platforms:
// "all" or a comma-separated list.
func IsMulti(platform string) bool {
	return platform == AllPlatforms || strings.Contains(platform, ",")
}

// ParsePlatforms reads a multi-platform --platform value: nil for "all",
// else the list's platforms, each parsed and normalised by containerd
// (linux/arm64/v8 is linux/arm64), none empty or given twice.
func ParsePlatforms(v string) ([]ocispec.Platform, error) {
	if v == AllPlatforms {
		return nil, nil
	}
	var out []ocispec.Platform
	seen := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" || s == AllPlatforms {
			return nil, fmt.Errorf("--platform %q: want \"all\" or os/arch[/variant],...: %w", v, errEmptyOrAll(s))
		}
		p, err := platforms.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("--platform %q: %w", v, err)
		}
		p = platforms.Normalize(p)
		f := platforms.Format(p)
		if seen[f] {
			return nil, fmt.Errorf("--platform %q: %s given twice", v, f)
		}
		seen[f] = true
		out = append(out, p)
	}
	return out, nil
}

func errEmptyOrAll(s string) error {
	if s == "" {
		return errors.New("an empty entry")
	}
	return errors.New(`"all" in a list`)
}

// CheckMulti refuses the options that name one architecture's files or
// VM when several platforms are converted (errors wrap ErrMultiOption):
// --vm-arch and --binfmt-interpreter; a --kernel that is one kernel file,
// .deb or directory for every arch; one --init binary or one EFI stub
// file for every arch. A --kernel that serves every arch is fine:
// debian:SUITE[=VERSION] (each arch's package of the suite), a kernel
// image (each platform takes its own arch's manifest); so is a
// debian:SUITE EFI stub. Sources per arch (ByArch) are fine.
func CheckMulti(o Options) error {
	switch {
	case o.VMArch != "":
		return fmt.Errorf("--vm-arch: each platform's VM is its own arch: %w", ErrMultiOption)
	case o.BinfmtInterpreter != "":
		return fmt.Errorf("--binfmt-interpreter: a qemu-user binary serves one VM arch: %w", ErrMultiOption)
	}
	if k, ok := o.Kernel[AnyArch]; ok && !debianRef(k) && !isImageRef(k) {
		return multiErr("--kernel", k, "one kernel serves one arch; give debian:SUITE[=VERSION], a multi-arch kernel image, or ARCH=PATH,... (one kernel per arch)")
	}
	if v, ok := o.Init[AnyArch]; ok {
		return multiErr("--init", v, "an init binary serves one arch; give ARCH=PATH,... (one per arch)")
	}
	if v, ok := o.EFIStub[AnyArch]; ok && !debianRef(v) {
		return multiErr("--efi-stub", v, "an EFI stub serves one arch; give debian:SUITE[=VERSION] or ARCH=PATH,... (one per arch)")
	}
	return nil
}

func multiErr(flag, v, hint string) error {
	return fmt.Errorf("%s %s: %s: %w", flag, v, hint, ErrMultiOption)
}

// debianRef reports whether v is debian:SUITE[=VERSION], which names each
// arch's package.
func debianRef(v string) bool {
	_, _, ok := kernel.ParseDebianRef(v)
	return ok
}

// MultiResult describes a finished multi-platform conversion.
type MultiResult struct {
	Dir       string
	Manifest  vmdir.MultiManifest
	Platforms []Result // in Manifest.Platforms' order
}

// ConvertAll converts several platforms of one image, each into
// o.Output/<os>-<arch>[-<variant>] exactly as Convert writes one platform
// into its own directory, plus a top manifest.json listing them. want
// names the platforms (ParsePlatforms); nil means every Linux platform
// of the index c2vm can make a VM for. The image is opened once: one
// archive index or registry session for all, and a registry blob two
// platforms share is downloaded once (image.Index). Up to o.Jobs
// platforms are converted at once, started in the index's order; each
// writes the bytes it would alone (progress lines carry its name). The whole
// directory appears only when every platform succeeded; an error names
// the platform that failed, stops the others and leaves o.Output as it
// was.
func ConvertAll(ctx context.Context, o Options, want []ocispec.Platform) (*MultiResult, error) {
	if err := CheckMulti(o); err != nil {
		return nil, err
	}
	if err := checkOptions(&o); err != nil {
		return nil, err
	}
	if o.Output == "" {
		o.Output = defaultOutput(o.Image)
	}
	// One platform's failure cancels the others, their registry
	// downloads included: the index's store reads under this ctx.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	x, sel, skipped, err := openIndex(ctx, o, want)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	var r *MultiResult
	dir, err := build(o.Output, func(top *stage) error {
		// An earlier one-platform output in DIR may hold the VM's data
		// disks, which replacing it would delete.
		if err := (&conversion{o: o, st: top}).checkOldDisks(); err != nil {
			return err
		}
		var err error
		if r, err = convertEach(ctx, cancel, o, x, sel, top); err != nil {
			return err
		}
		r.Manifest.Skipped = skipped
		return vmdir.WriteJSON(top.path(vmdir.ManifestFile), r.Manifest)
	})
	if err != nil {
		return nil, err
	}
	o.progress("done: %s", dir)
	return r, nil
}

// openIndex opens the image's index and selects the platforms to convert
// (selectPlatforms).
func openIndex(ctx context.Context, o Options, want []ocispec.Platform) (*image.Index, []int, []vmdir.SkippedPlatform, error) {
	x, err := image.OpenIndex(ctx, o.Image, image.Options{Creds: o.Creds, InsecureTLS: o.InsecureTLS, StallTimeout: o.StallTimeout, Meter: o.Meter, SpoolDir: filepath.Dir(o.Output)})
	if err != nil {
		return nil, nil, nil, err
	}
	sel, skipped, err := selectPlatforms(x, want)
	if err != nil {
		x.Close()
		return nil, nil, nil, fmt.Errorf("image %s: %w", o.Image, err)
	}
	for _, s := range skipped {
		o.progress("skipping %s: %s", platforms.Format(s.Platform), s.Reason)
	}
	index := ""
	if x.Digest != "" {
		index = " " + short(x.Digest.String())
	}
	o.progress("image: %s%s, platforms %s", o.Image, index, formatList(x, sel))
	return x, sel, skipped, nil
}

// convertEach converts the platforms x.Platforms[sel] into top's
// subdirectories, up to o.jobs() at once (eachPlatform), and gathers the
// top manifest in sel's order, whatever order they finished in.
func convertEach(ctx context.Context, cancel context.CancelFunc, o Options, x *image.Index, sel []int, top *stage) (*MultiResult, error) {
	r := &MultiResult{Dir: top.target, Manifest: vmdir.MultiManifest{SchemaVersion: vmdir.SchemaVersion, C2VMVersion: o.Version, Image: vmdir.IndexInfo{Ref: o.Image, IndexDigest: x.Digest.String()}}}
	res := make([]*Result, len(sel))
	jobs := o.jobs(len(sel))
	shared := o.shared(jobs)
	err := eachPlatform(ctx, cancel, jobs, len(sel), func(k int) error {
		var err error
		res[k], err = convertOne(ctx, shared, x, sel[k], top)
		return err
	})
	if err != nil {
		return nil, err
	}
	for k, i := range sel {
		p := x.Platforms[i]
		a, err := vmdir.DigestFile(filepath.Join(top.dir, subdir(p), vmdir.ManifestFile))
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", platforms.Format(platforms.Normalize(p)), err)
		}
		r.Platforms = append(r.Platforms, *res[k])
		r.Manifest.Platforms = append(r.Manifest.Platforms, vmdir.PlatformEntry{Platform: p, Dir: subdir(p),
			ManifestDigest: res[k].Manifest.Image.ManifestDigest, ConfigDigest: res[k].Manifest.Image.ConfigDigest, Manifest: a})
	}
	return r, nil
}

// convertOne converts x.Platforms[i] into its subdirectory of top, as
// Convert would into a directory of its own: the same options but the
// platform's kernel and init, the same stages, and the paths inside the
// configs naming the final subdirectory.
func convertOne(ctx context.Context, o Options, x *image.Index, i int, top *stage) (*Result, error) {
	p := x.Platforms[i]
	o.Platform = &p
	name := platforms.Format(platforms.Normalize(p))
	o.label = name + ": "
	o.Meter = labelMeter(o.Meter, o.label)
	st := &stage{dir: filepath.Join(top.dir, subdir(p)), target: filepath.Join(top.target, subdir(p))}
	o.Output = st.target
	if err := os.Mkdir(st.dir, 0o755); err != nil {
		return nil, fmt.Errorf("platform %s: output: %w", name, err)
	}
	img, err := x.Image(i)
	if err != nil {
		return nil, fmt.Errorf("platform %s: %w", name, err)
	}
	defer img.Close()
	o.progress("image: %s %s, %d layers", platformString(img), short(img.ManifestDigest.String()), len(img.Layers))
	c := &conversion{o: o, img: img, st: st}
	if err := c.run(ctx); err != nil {
		return nil, fmt.Errorf("platform %s: %w", name, err)
	}
	return &Result{Dir: st.target, Manifest: c.manifest}, nil
}

// selectPlatforms picks the platforms to convert, as indexes into
// x.Platforms: those want names, or (want nil) each one c2vm can make a
// VM for, the others returned as skipped.
func selectPlatforms(x *image.Index, want []ocispec.Platform) ([]int, []vmdir.SkippedPlatform, error) {
	var sel []int
	var skipped []vmdir.SkippedPlatform
	if want == nil {
		for i, p := range x.Platforms {
			if _, err := arch.VM(p.Architecture); err != nil {
				skipped = append(skipped, vmdir.SkippedPlatform{Platform: p, Reason: err.Error()})
				continue
			}
			sel = append(sel, i)
		}
		if len(sel) == 0 {
			return nil, nil, fmt.Errorf("%w: none of the image's platforms (%s) can be a VM", image.ErrNoPlatform, formatList(x, allIndexes(x)))
		}
	} else {
		for _, w := range want {
			i, err := x.Match(platforms.Format(w))
			if err != nil {
				return nil, nil, err
			}
			sel = append(sel, i)
		}
	}
	dirs := map[string]int{}
	for k, i := range sel {
		d := subdir(x.Platforms[i])
		j, ok := dirs[d]
		switch {
		case ok && sel[j] == i:
			return nil, nil, fmt.Errorf("--platform %s and %s name the same manifest (%s)", platforms.Format(want[j]), platforms.Format(want[k]), platforms.Format(x.Platforms[i]))
		case ok:
			return nil, nil, fmt.Errorf("%s and %s would both be written to %s: name one with --platform", platforms.Format(x.Platforms[sel[j]]), platforms.Format(x.Platforms[i]), d)
		}
		dirs[d] = k
	}
	return sel, skipped, nil
}

func allIndexes(x *image.Index) []int {
	out := make([]int, len(x.Platforms))
	for i := range out {
		out[i] = i
	}
	return out
}

func formatList(x *image.Index, sel []int) string {
	var l []string
	for _, i := range sel {
		l = append(l, platforms.Format(x.Platforms[i]))
	}
	return strings.Join(l, ", ")
}

// subdir names a platform's output directory: os-arch[-variant], after
// containerd's normalisation (linux/arm64/v8 → linux-arm64).
func subdir(p ocispec.Platform) string {
	return strings.ReplaceAll(platforms.Format(platforms.Normalize(p)), "/", "-")
}

// labelMeter prefixes each display's name with label.
func labelMeter(m Meter, label string) Meter {
	if m == nil {
		return nil
	}
	return func(what string, total int64) io.WriteCloser { return m(label+what, total) }
}
