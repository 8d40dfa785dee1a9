package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/c2vm/c2vm/convert"
	"github.com/c2vm/c2vm/vmdir"
)

func parseJSONArray(s string) ([]string, error) {
	var a []string
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return nil, fmt.Errorf("not a JSON array of strings: %w", err)
	}
	return a, nil
}

// convertResult is `c2vm convert --json`'s one document on stdout.
type convertResult struct {
	C2VMVersion string                    `json:"c2vmVersion"`
	Dir         string                    `json:"dir"`
	Image       imageResult               `json:"image"`
	Rootfs      string                    `json:"rootfs"`
	Kernel      *vmdir.KernelInfo         `json:"kernel,omitempty"`
	Artifacts   map[string]artifactResult `json:"artifacts"`
}

type imageResult struct {
	Ref            string           `json:"ref"`
	ManifestDigest string           `json:"manifestDigest"`
	ConfigDigest   string           `json:"configDigest"`
	Platform       ocispec.Platform `json:"platform"`
}

type artifactResult struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// newConvertResult lists every file of the output: manifest.json's
// artifacts and manifest.json itself.
func newConvertResult(r *convert.Result) (convertResult, error) {
	m := r.Manifest
	out := convertResult{
		C2VMVersion: m.C2VMVersion, Dir: r.Dir, Rootfs: m.Rootfs, Kernel: m.Kernel,
		Image:     imageResult{Ref: m.Image.Ref, ManifestDigest: m.Image.ManifestDigest, ConfigDigest: m.Image.ConfigDigest, Platform: m.Platform},
		Artifacts: map[string]artifactResult{},
	}
	for name, a := range m.Artifacts {
		out.Artifacts[name] = artifactResult{Path: filepath.Join(r.Dir, name), SHA256: a.SHA256, Size: a.Size}
	}
	mf := filepath.Join(r.Dir, "manifest.json")
	a, err := vmdir.DigestFile(mf)
	if err != nil {
		return out, err
	}
	out.Artifacts["manifest.json"] = artifactResult{Path: mf, SHA256: a.SHA256, Size: a.Size}
	return out, nil
}

// errorResult is the document --json prints on stdout on failure: the
// one-line message stderr also gets, and the exit status.
type errorResult struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exitCode"`
}

// writeJSON prints v indented, with a final newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// jsonErrors wraps a --json command: a failure is also reported as one
// errorResult on stdout.
func jsonErrors(stdout io.Writer, err error) error {
	if err == nil {
		return nil
	}
	code, msg := exitStatus(err)
	if code != 0 {
		writeJSON(stdout, errorResult{Error: msg, ExitCode: code})
	}
	return err
}
