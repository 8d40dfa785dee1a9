package convert

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/rootfs/verity"
	"github.com/c2vm/c2vm/vmdir"
)

// verityOutput is rootfs.verity (--verity).
var verityOutput = output{
	name:   "verity",
	phase:  afterRootfs,
	wanted: func(o *Options) bool { return o.Verity },
	write:  (*conversion).writeVerity,
}

// writeVerity pads rootfs.img to whole 4 KiB blocks (the filesystems
// ignore what follows their end) and writes its hash tree, the salt
// derived from the padded image's digest: the same rootfs gives the same
// tree.
func (c *conversion) writeVerity(context.Context) error {
	f, err := os.OpenFile(c.st.path(vmdir.Rootfs), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("rootfs.img: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("rootfs.img: %w", err)
	}
	size := (fi.Size() + verity.BlockSize - 1) / verity.BlockSize * verity.BlockSize
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("padding rootfs.img for dm-verity: %w", err)
	}
	a, err := c.digest(vmdir.Rootfs)
	if err != nil {
		return err
	}
	digest, err := hex.DecodeString(a.SHA256)
	if err != nil {
		return err
	}
	salt := verity.Salt(digest)
	out, err := os.OpenFile(c.st.path(vmdir.Verity), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", vmdir.Verity, err)
	}
	defer out.Close()
	root, err := verity.Write(out, f, size, salt)
	if err != nil {
		return fmt.Errorf("writing %s: %w", vmdir.Verity, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("%s: %w", vmdir.Verity, err)
	}
	c.manifest.Verity = &vmdir.VerityInfo{File: vmdir.Verity, RootHash: verity.Hex(root), Salt: verity.Hex(salt),
		DataBlocks: size / verity.BlockSize, BlockSize: verity.BlockSize, HashOffset: verity.HashOffset, Algorithm: verity.Algorithm}
	c.o.progress("verity: root hash %s", c.manifest.Verity.RootHash)
	return nil
}

// verityStep is the boot plan's part of the hash tree, nil without one.
func (c *conversion) verityStep() *plan.VerityRoot {
	v := c.manifest.Verity
	if v == nil {
		return nil
	}
	return &plan.VerityRoot{DataBlocks: v.DataBlocks, HashOffset: v.HashOffset, RootHash: v.RootHash, Salt: v.Salt}
}

// verityDisk is the hash tree's file for the hypervisor configs, "" without one.
func (c *conversion) verityDisk() string {
	if c.manifest.Verity == nil {
		return ""
	}
	return c.manifest.Verity.File
}
