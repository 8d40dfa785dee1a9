// Package kubevirt writes the Kubernetes manifests that run a pushed VM
// under KubeVirt: a kubevirt.io/v1 VirtualMachine whose one disk is the
// pushed containerDisk, pinned by digest, booted by UEFI with Secure Boot
// off (c2vm's UKI is unsigned), a CDI DataVolume per VOLUME imported
// from its pushed data-disk image (so its data outlives the VM instance),
// and a Service for the image's EXPOSEd ports. The types mirror the fields of kubevirt.io/api/core/v1 and
// k8s.io/api/core/v1 this package writes (same JSON names), so the main
// module does not link Kubernetes' API packages; deploy/test decodes the
// output into the upstream types.
//
//	err := kubevirt.Write(os.Stdout, kubevirt.VM{Name: "web", Image: "reg/web@sha256:...", Ports: ports})
package kubevirt

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// VM is what the manifests are made from.
type VM struct {
	// Name of the VirtualMachine and Service: a DNS-1123 label.
	Name string
	// Image is the containerDisk, REPO@sha256:... (never a tag: a node
	// must boot the bytes that were pushed).
	Image  string
	Memory int // MiB
	CPUs   int
	// Ports are the image's EXPOSEd ports.
	Ports []plan.Port
	// StopTimeout is how long the init gives the container to stop
	// after the power button (seconds).
	StopTimeout int
	// Volumes are the VOLUMEs' data-disk images, in the order of the
	// conversion's data disks.
	Volumes []Volume
}

// Volume is a VOLUME's data-disk image, which CDI imports into a
// DataVolume that outlives the VM instance.
type Volume struct {
	Image string // REPO@sha256:..., in the containerDisk layout
	Size  int64  // the disk's size in bytes
}

// stopMargin is what the init needs after the container's stop timeout:
// SIGKILL, sync, unmount, status line, power off.
const stopMargin = 5

// Write writes the manifests as YAML documents.
func Write(w io.Writer, vm VM) error {
	if err := vm.check(); err != nil {
		return err
	}
	docs := []any{virtualMachine(vm)}
	if len(vm.Ports) > 0 {
		docs = append(docs, service(vm))
	}
	for i, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

var (
	dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	notName = regexp.MustCompile(`[^a-z0-9-]+`)
)

func (vm VM) check() error {
	if !dns1123.MatchString(vm.Name) {
		return fmt.Errorf("kubevirt: name %q is not a DNS-1123 label", vm.Name)
	}
	for _, img := range append([]string{vm.Image}, volumeImages(vm.Volumes)...) {
		if !strings.Contains(img, "@sha256:") {
			return fmt.Errorf("kubevirt: image %q is not pinned by digest", img)
		}
	}
	return nil
}

func volumeImages(vs []Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Image)
	}
	return out
}

// Name makes a DNS-1123 label of a repository's last path element.
func Name(repo string) string {
	s := strings.ToLower(repo[strings.LastIndexByte(repo, '/')+1:])
	s = notName.ReplaceAllString(s, "-")
	s = strings.Trim(s, "-")
	if len(s) > 63 {
		s = strings.Trim(s[:63], "-")
	}
	if s == "" {
		return "vm"
	}
	return s
}
