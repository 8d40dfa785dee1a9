package cli

import (
	"context"
	"io"
	"path/filepath"

	"github.com/c2vm/c2vm/convert"
	"github.com/c2vm/c2vm/vmdir"
)

// runMulti converts every platform --platform names ("all", or a comma
// list) into DIR/<os>-<arch>[-<variant>] and prints the --json result.
// Progress lines (and live meters) carry the platform they are about.
func runMulti(ctx context.Context, o convert.Options, platform string, asJSON bool, stdout io.Writer) error {
	want, err := convert.ParsePlatforms(platform)
	if err != nil {
		return usagef("%v", err)
	}
	r, err := convert.ConvertAll(ctx, o, want)
	if err != nil || !asJSON {
		return err
	}
	res, err := newMultiResult(r)
	if err != nil {
		return err
	}
	return writeJSON(stdout, res)
}

// multiResult is `c2vm convert --platform all --json`'s one document:
// each platform's result as a single-platform convert prints it, and the
// top manifest.json.
type multiResult struct {
	C2VMVersion string                    `json:"c2vmVersion"`
	Dir         string                    `json:"dir"`
	Image       vmdir.IndexInfo           `json:"image"`
	Platforms   []convertResult           `json:"platforms"`
	Skipped     []vmdir.SkippedPlatform   `json:"skipped,omitempty"`
	Artifacts   map[string]artifactResult `json:"artifacts"`
}

func newMultiResult(r *convert.MultiResult) (multiResult, error) {
	out := multiResult{C2VMVersion: r.Manifest.C2VMVersion, Dir: r.Dir, Image: r.Manifest.Image, Skipped: r.Manifest.Skipped}
	for i := range r.Platforms {
		pr, err := newConvertResult(&r.Platforms[i])
		if err != nil {
			return out, err
		}
		out.Platforms = append(out.Platforms, pr)
	}
	mf := filepath.Join(r.Dir, "manifest.json")
	a, err := vmdir.DigestFile(mf)
	if err != nil {
		return out, err
	}
	out.Artifacts = map[string]artifactResult{"manifest.json": {Path: mf, SHA256: a.SHA256, Size: a.Size}}
	return out, nil
}
