package convert

import (
	"context"
	"os"

	"github.com/c2vm/c2vm/vmdir"
)

// startManifest records what is known before the first stage: the
// image, its platform and the VM's sizes (vmdir.Config names the VM
// after the image).
func (c *conversion) startManifest() {
	m := &c.manifest
	m.SchemaVersion = vmdir.SchemaVersion
	m.C2VMVersion = c.o.Version
	m.Image = vmdir.ImageInfo{Ref: c.o.Image, ManifestDigest: c.img.ManifestDigest.String(), ConfigDigest: c.img.ConfigDigest.String()}
	m.Platform = c.img.Platform
	m.Memory, m.CPUs = c.o.Memory, c.o.CPUs
	m.StopTimeout = c.stopTimeout()
	m.SBOM, m.Provenance = vmdir.SBOM, c.provenanceFile()
}

// writeManifest records every file of the directory and writes
// manifest.json, the last file.
func (c *conversion) writeManifest(context.Context) error {
	m := &c.manifest
	entries, err := os.ReadDir(c.st.dir)
	if err != nil {
		return err
	}
	m.Artifacts = map[string]vmdir.Artifact{}
	for _, e := range entries {
		if e.Name() == vmdir.ManifestFile || !e.Type().IsRegular() {
			continue
		}
		a, err := c.digest(e.Name())
		if err != nil {
			return err
		}
		m.Artifacts[e.Name()] = a
	}
	return vmdir.WriteJSON(c.st.path(vmdir.ManifestFile), m)
}

// digest is vmdir.DigestFile of an artifact, read once: --verity's salt and
// the manifest both need rootfs.img's, the output's largest file. An
// artifact is complete when a stage first asks for its digest.
func (c *conversion) digest(name string) (vmdir.Artifact, error) {
	if a, ok := c.digests[name]; ok {
		return a, nil
	}
	a, err := vmdir.DigestFile(c.st.path(name))
	if err != nil {
		return a, err
	}
	if c.digests == nil {
		c.digests = map[string]vmdir.Artifact{}
	}
	c.digests[name] = a
	return a, nil
}
