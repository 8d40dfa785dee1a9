package convert

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/kernel"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest is manifest.json: what was converted, with what, into what.
type Manifest struct {
	C2VMVersion string           `json:"c2vmVersion"`
	Image       ImageInfo        `json:"image"`
	Platform    ocispec.Platform `json:"platform"`
	VMArch      string           `json:"vmArch,omitempty"`
	Memory      int              `json:"memory,omitempty"` // MiB, as given to --memory
	CPUs        int              `json:"cpus,omitempty"`
	StopTimeout int              `json:"stopTimeout,omitempty"` // seconds the init gives the container to stop
	Rootfs      string           `json:"rootfs"`
	Kernel      *KernelInfo      `json:"kernel,omitempty"`
	// Exposed are the image's EXPOSEd ports; Forwards the ports the
	// configs publish (c2vm run starts from them).
	Exposed  []plan.Port    `json:"exposed,omitempty"`
	Forwards []plan.Forward `json:"forwards,omitempty"`
	// DataDisks are the data disks' files, in the order the hypervisor
	// configs attach them after the root disk; Volumes says which volume
	// each one serves.
	DataDisks []string     `json:"dataDisks,omitempty"`
	Volumes   []VolumeInfo `json:"volumes,omitempty"`
	// Verity is the root disk's dm-verity hash tree, when --verity made one.
	Verity *VerityInfo `json:"verity,omitempty"`
	// Disk is the UEFI-bootable disk image (--disk), when written.
	Disk *DiskInfo `json:"disk,omitempty"`
	// Artifacts maps each file in the directory (but manifest.json) to its
	// digest and size.
	Artifacts map[string]Artifact `json:"artifacts"`
}

// ImageInfo identifies the source image.
type ImageInfo struct {
	Ref            string `json:"ref"`
	ManifestDigest string `json:"manifestDigest"`
	ConfigDigest   string `json:"configDigest"`
}

// KernelInfo identifies the kernel in the output.
type KernelInfo struct {
	// Source is what --kernel named, or "image" for the image's own.
	Source  string   `json:"source,omitempty"`
	Version string   `json:"version"`
	Arch    string   `json:"arch"`
	Format  string   `json:"format"`
	Modules []string `json:"modules,omitempty"`
	// Shares are the host-share filesystems the VM can mount (c2vm run
	// -v): "virtiofs", "9p", both or none.
	Shares []string `json:"shares,omitempty"`
	// Debian is the Debian package the kernel came from, when c2vm
	// fetched it (--kernel debian:SUITE=VERSION pins it again).
	Debian *kernel.DebianSource `json:"debian,omitempty"`
	// Image is the container image the kernel came from (--kernel oci:...).
	Image *ImageInfo `json:"image,omitempty"`
}

// Artifact is one output file's identity.
type Artifact struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// ReadManifest reads DIR/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(dir + "/manifest.json")
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parsing %s/manifest.json: %w", dir, err)
	}
	if m.Artifacts == nil {
		var mm MultiManifest
		if json.Unmarshal(b, &mm) == nil && len(mm.Platforms) > 0 {
			var dirs []string
			for _, p := range mm.Platforms {
				dirs = append(dirs, p.Dir)
			}
			return nil, fmt.Errorf("%s holds one output per platform (%s): give one of those directories", dir, strings.Join(dirs, ", "))
		}
	}
	return &m, nil
}

func (c *conversion) writeManifest(fsType string) error {
	m := &c.manifest
	m.C2VMVersion = c.o.Version
	m.Rootfs = fsType
	m.Image = ImageInfo{Ref: c.o.Image, ManifestDigest: c.img.ManifestDigest.String(), ConfigDigest: c.img.ConfigDigest.String()}
	m.Platform = c.img.Platform
	m.Memory, m.CPUs = c.o.Memory, c.o.CPUs
	m.StopTimeout = c.stopTimeout()
	entries, err := os.ReadDir(c.st.dir)
	if err != nil {
		return err
	}
	m.Artifacts = map[string]Artifact{}
	for _, e := range entries {
		if e.Name() == "manifest.json" || !e.Type().IsRegular() {
			continue
		}
		a, err := c.digest(e.Name())
		if err != nil {
			return err
		}
		m.Artifacts[e.Name()] = a
	}
	return writeJSON(c.st.path("manifest.json"), m)
}

// digest is DigestFile of an artifact, read once: --verity's salt and
// the manifest both need rootfs.img's, the output's largest file. An
// artifact is complete when a stage first asks for its digest.
func (c *conversion) digest(name string) (Artifact, error) {
	if a, ok := c.digests[name]; ok {
		return a, nil
	}
	a, err := DigestFile(c.st.path(name))
	if err != nil {
		return a, err
	}
	if c.digests == nil {
		c.digests = map[string]Artifact{}
	}
	c.digests[name] = a
	return a, nil
}

// DigestFile gives the sha256 and size of the file p.
func DigestFile(p string) (Artifact, error) {
	f, err := os.Open(p)
	if err != nil {
		return Artifact{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Artifact{}, fmt.Errorf("hashing %s: %w", p, err)
	}
	return Artifact{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// writeJSON writes v indented, with sorted map keys (encoding/json sorts
// them), and a final newline.
func writeJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o644)
}

func marshalIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}
