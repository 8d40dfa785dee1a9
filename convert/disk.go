package convert

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/disk"
	"github.com/c2vm/c2vm/disk/pesign"
	"github.com/c2vm/c2vm/kernel"
	"github.com/c2vm/c2vm/vmconfig"
	"github.com/c2vm/c2vm/vmdir"
)

// checkEFIStubs refuses an --efi-stub that is not there, before the
// conversion's work rather than after it ("" is the default stub,
// debian:SUITE[=VERSION] Debian's, fetched).
func checkEFIStubs(paths ...string) error {
	for _, p := range paths {
		if _, _, debian := kernel.ParseDebianRef(p); p == "" || debian {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("--efi-stub: %w", err)
		}
	}
	return nil
}

// diskOutput is the UEFI-bootable disk image (--disk) and its
// qemu-disk.sh and libvirt-disk.xml; an unknown format is refused before
// any work.
var diskOutput = output{
	name:   "disk",
	phase:  afterBoot,
	wanted: func(o *Options) bool { return o.Disk != "" },
	check: func(o *Options) error {
		if _, err := disk.ParseFormat(string(o.Disk)); err != nil {
			return fmt.Errorf("--disk: %w", err)
		}
		if o.NoKernel {
			return errors.New("--disk needs a kernel: drop --no-kernel")
		}
		return checkEFIStubs(o.EFIStub.sorted()...)
	},
	write: (*conversion).writeDisk,
}

// writeDisk writes the UEFI-bootable disk image (--disk) from the
// artifacts already in the output — kernel, initramfs.img, rootfs.img
// and the data disks — and its qemu-disk.sh and libvirt-disk.xml. The
// separate artifacts stay: the disk is one more way to boot them.
func (c *conversion) writeDisk(ctx context.Context) error {
	vm, err := arch.VM(c.manifest.VMArch)
	if err != nil {
		return err
	}
	uname := c.manifest.Kernel.Version
	format, err := disk.ParseFormat(string(c.o.Disk))
	if err != nil {
		return fmt.Errorf("--disk: %w", err)
	}
	uki, stub, err := c.buildUKI(ctx, vm, uname)
	if err != nil {
		return err
	}
	o := disk.Options{Arch: vm.GOARCH, UKI: uki, Root: c.st.path(vmdir.Rootfs), Epoch: c.o.Epoch}
	// GUIDs from the image and everything booted from it: one input, one
	// disk identity.
	sum := sha256.Sum256(uki)
	o.Seed = c.img.ManifestDigest.String() + " " + hex.EncodeToString(sum[:])
	for _, v := range c.manifest.Volumes {
		o.Data = append(o.Data, disk.Data{Name: v.Label, File: c.st.path(v.Disk)})
	}
	// The hash tree in its own partition; the root hash is in the boot
	// plan, inside the UKI's initramfs, and on the UKI's command line
	// (buildUKI). The init finds both partitions by content, as it finds
	// the disks.
	if f := c.verityDisk(); f != "" {
		o.Verity = c.st.path(f)
	}
	name := format.File()
	raw := c.st.path(disk.Raw.File())
	l, err := disk.Write(ctx, raw, o)
	if err != nil {
		return err
	}
	if format != disk.Raw {
		if err := disk.Convert(raw, c.st.path(name), format, o.Seed); err != nil {
			return err
		}
	}
	c.manifest.Disk = diskInfo(name, string(format), l)
	c.manifest.Disk.EFIStub = stub
	if sb := c.o.SecureBoot; sb != nil {
		sum := sha256.Sum256(sb.Cert.Raw)
		c.manifest.Disk.SecureBoot = hex.EncodeToString(sum[:])
	}
	c.o.progress("disk: %s (%s), %d partitions, UKI %s", name, formatSize(l.Size), len(l.Partitions), l.BootFile)
	return c.writeDiskConfigs()
}

// buildUKI builds the Unified Kernel Image on the EFI stub, with the
// command line the direct-boot configs pass, c2vm.roothash included (the
// init finds the root partition by its content, as it finds a root
// disk).
func (c *conversion) buildUKI(ctx context.Context, vm arch.Arch, uname string) ([]byte, *vmdir.EFIStub, error) {
	stub, stubInfo, err := c.efiStub(ctx, vm)
	if err != nil {
		return nil, nil, err
	}
	c.addPart(stubPart(stubInfo, vm), stub)
	linux, err := os.ReadFile(c.st.path(vmdir.Kernel))
	if err != nil {
		return nil, nil, err
	}
	initrd, err := os.ReadFile(c.st.path(vmdir.Initramfs))
	if err != nil {
		return nil, nil, err
	}
	u := disk.UKISections{
		OSRel:   c.osRelease(),
		Cmdline: vmconfig.KernelCmdline(vm.Console, c.manifest.KernelArgs()),
		Uname:   uname,
		Initrd:  initrd,
		Linux:   linux,
	}
	uki, err := disk.BuildUKI(stub, vm.GOARCH, u)
	if err != nil {
		return nil, nil, fmt.Errorf("building the UKI on %s: %w", stubInfo.Source, err)
	}
	if sb := c.o.SecureBoot; sb != nil {
		if uki, err = pesign.Sign(uki, sb.Key, sb.Cert); err != nil {
			return nil, nil, fmt.Errorf("signing the UKI for Secure Boot: %w", err)
		}
		c.o.progress("disk: UKI signed for Secure Boot by %s", sb.Cert.Subject)
	}
	return uki, stubInfo, nil
}

// osRelease is the UKI's .osrel: what a boot menu shows for it
// (os-release(5) fields).
func (c *conversion) osRelease() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "ID=c2vm\nNAME=c2vm\nPRETTY_NAME=\"c2vm %s\"\nIMAGE_ID=%s\nIMAGE_VERSION=%s\n",
		filepath.Base(defaultOutput(c.o.Image)), c.manifest.Name(), c.o.Version)
	return b.Bytes()
}

// writeDiskConfigs writes qemu-disk.sh and libvirt-disk.xml.
func (c *conversion) writeDiskConfigs() error {
	targets := vmconfig.DiskTargets()
	if c.o.Disk == disk.VHDX {
		// libvirt's disk formats have no vhdx (storagecommon.rng): the
		// disk is for Hyper-V; qemu-disk.sh boots it with QEMU.
		targets = slices.DeleteFunc(targets, func(t vmconfig.DiskTarget) bool { return t.Name() == vmdir.LibvirtDisk })
		c.o.progress("disk: no libvirt-disk.xml: libvirt has no vhdx disk format")
	}
	return writeTargets(c.st, targets, vmdir.DiskConfig(&c.manifest, c.st.target))
}

// diskInfo is manifest.json's record of the disk written as l.
func diskInfo(file, format string, l *disk.Layout) *vmdir.DiskInfo {
	d := &vmdir.DiskInfo{File: file, Format: format, Size: l.Size, GUID: l.GUID, BootFile: l.BootFile}
	for _, p := range l.Partitions {
		d.Partitions = append(d.Partitions, vmdir.Partition(p))
	}
	return d
}

// writeConfig writes a hypervisor config, executable when it is a
// script.
func writeConfig(p string, b []byte) error {
	mode := os.FileMode(0o644)
	if filepath.Ext(p) == ".sh" {
		mode = 0o755
	}
	if err := os.WriteFile(p, b, mode); err != nil {
		return err
	}
	// WriteFile's mode passes through the umask.
	return os.Chmod(p, mode)
}

// SecureBoot is the key and certificate the UKI is signed with: an RSA
// key, as UEFI firmware verifies RSA (PKCS #1 v1.5, SHA-256), and the
// certificate enrolled in the firmware's db (or one it chains to).
type SecureBoot struct {
	Key  crypto.Signer
	Cert *x509.Certificate
}

// ParseSecureBoot reads --secure-boot-key (PEM: PKCS #8, or PKCS #1 "RSA
// PRIVATE KEY"; unencrypted) and --secure-boot-cert (PEM), and checks
// that they belong together.
func ParseSecureBoot(keyPEM, certPEM []byte) (*SecureBoot, error) {
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("key: no PEM block")
	}
	var k any
	var err error
	switch kb.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	default:
		return nil, fmt.Errorf("key: PEM block %q, want an unencrypted \"PRIVATE KEY\" (openssl pkcs8 decrypts one)", kb.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("key: not RSA (UEFI firmware verifies RSA signatures)")
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("certificate: no PEM \"CERTIFICATE\" block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	if !rk.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("the key is not the certificate's")
	}
	return &SecureBoot{Key: rk, Cert: cert}, nil
}
