package convert

import (
	"encoding/hex"
	"fmt"
	"os"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/rootfs/verity"
)

// VerityFile is the hash tree's name in the output directory.
const VerityFile = "rootfs.verity"

// VerityInfo is manifest.json's record of the root disk's dm-verity hash
// tree: what `veritysetup verify rootfs.img rootfs.verity ROOTHASH`
// checks, and what the boot plan gives the init.
type VerityInfo struct {
	File       string `json:"file"`
	RootHash   string `json:"rootHash"` // hex
	Salt       string `json:"salt"`     // hex
	DataBlocks int64  `json:"dataBlocks"`
	BlockSize  int    `json:"blockSize"`
	HashOffset int64  `json:"hashOffset"` // bytes: the tree's start in File
	Algorithm  string `json:"algorithm"`
}

// writeVerity pads rootfs.img to whole 4 KiB blocks (the filesystems
// ignore what follows their end) and writes its hash tree, the salt
// derived from the padded image's digest: the same rootfs gives the same
// tree.
func (c *conversion) writeVerity() error {
	if !c.o.Verity {
		return nil
	}
	f, err := os.OpenFile(c.st.path("rootfs.img"), os.O_RDWR, 0)
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
	a, err := c.digest("rootfs.img")
	if err != nil {
		return err
	}
	digest, err := hex.DecodeString(a.SHA256)
	if err != nil {
		return err
	}
	salt := verity.Salt(digest)
	out, err := os.OpenFile(c.st.path(VerityFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", VerityFile, err)
	}
	defer out.Close()
	root, err := verity.Write(out, f, size, salt)
	if err != nil {
		return fmt.Errorf("writing %s: %w", VerityFile, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("%s: %w", VerityFile, err)
	}
	c.manifest.Verity = &VerityInfo{File: VerityFile, RootHash: verity.Hex(root), Salt: verity.Hex(salt),
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

// KernelArgs are the c2vm.* kernel arguments every boot of the output
// carries: for a --verity output, the root hash (plan.ArgRootHash), on
// the UKI's command line and the direct-boot configs' alike, and on
// c2vm run's. "" for none.
func (m *Manifest) KernelArgs() string {
	if m.Verity == nil {
		return ""
	}
	return plan.Args{RootHash: m.Verity.RootHash}.String()
}
