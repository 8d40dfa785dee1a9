package plan

import (
	"fmt"
	"strings"
)

func init() {
	register(func() Action { return &VerityRoot{} })
}

// VerityRoot waits up to WaitSeconds for the root disk (an FSType
// filesystem, found by its superblock like FindRoot's) and its dm-verity
// hash disk (rootfs.verity: found by its verity superblock carrying Salt),
// then creates the read-only device-mapper target /dev/mapper/Name, which
// checks every block read from the root disk against RootHash. A Mount
// step mounts it next. It reads the root's superblock through the target
// at once, so that a corrupted root stops the boot here, naming dm-verity.
//
// The hash disk is what `veritysetup format` writes (format 1, sha256,
// 4 KiB data and hash blocks, a superblock in the first hash block); the
// guest sets the target up with device-mapper ioctls, not veritysetup.
type VerityRoot struct {
	FSType      string `json:"fstype"`
	WaitSeconds int    `json:"waitSeconds"`
	Name        string `json:"name"`       // the mapper device's name
	DataBlocks  int64  `json:"dataBlocks"` // 4 KiB blocks of the root disk under the tree
	HashOffset  int64  `json:"hashOffset"` // bytes: where the tree starts on the hash disk
	RootHash    string `json:"rootHash"`   // hex
	Salt        string `json:"salt"`       // hex
}

// VerityBlockSize is the data and hash block size of c2vm's hash trees.
const VerityBlockSize = 4096

// VerityRootName is the mapper device c2vm's plans create for the root.
const VerityRootName = "c2vm-root"

func (*VerityRoot) Op() string { return "verityroot" }
func (v *VerityRoot) String() string {
	return fmt.Sprintf("check the %s root disk with dm-verity (hash disk found by content, waiting up to %ds, root hash %s) as /dev/mapper/%s",
		v.FSType, v.WaitSeconds, v.RootHash, v.Name)
}

// Device is the mapper device's path.
func (v *VerityRoot) Device() string { return "/dev/mapper/" + v.Name }

// Sectors is the target's length in 512-byte sectors.
func (v *VerityRoot) Sectors() uint64 { return uint64(v.DataBlocks) * VerityBlockSize / 512 }

// Table is the verity target's parameters
// (Documentation/admin-guide/device-mapper/verity.rst): version 1, the two
// devices, both block sizes, the data blocks, the hash start in hash
// blocks, the algorithm, the root digest and the salt. No optional
// arguments: a corrupted block then fails its read with EIO (neither
// ignore_corruption nor restart_on_corruption).
func (v *VerityRoot) Table(dataDev, hashDev string) string {
	return fmt.Sprintf("1 %s %s %d %d %d %d sha256 %s %s", dataDev, hashDev,
		VerityBlockSize, VerityBlockSize, v.DataBlocks, v.HashOffset/VerityBlockSize, v.RootHash, v.Salt)
}

// RootHashFor is the root hash the verity step v must check the root
// against, given the command line's c2vm.roothash (see ArgRootHash for
// the rule). v is nil for a plan that mounts its root without dm-verity:
// then the answer is "" and a c2vm.roothash is an error. Errors name
// dm-verity and both hashes.
func (a Args) RootHashFor(v *VerityRoot) (string, error) {
	arg := a.RootHash
	switch {
	case v == nil && arg != "":
		return "", fmt.Errorf("dm-verity: the kernel command line has %s=%s but the boot plan mounts the root without dm-verity: refusing an unchecked root", ArgRootHash, arg)
	case v == nil:
		return "", nil
	case v.RootHash == "" && arg == "":
		return "", fmt.Errorf("dm-verity: no root hash, neither in the boot plan nor as %s on the kernel command line", ArgRootHash)
	case arg == "":
		return v.RootHash, nil
	case v.RootHash == "":
		return arg, nil
	case !strings.EqualFold(arg, v.RootHash):
		return "", fmt.Errorf("dm-verity: the kernel command line's %s=%s differs from the boot plan's root hash %s: refusing the root", ArgRootHash, arg, v.RootHash)
	}
	return v.RootHash, nil
}
