package kubevirt

import (
	"fmt"
	"strings"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// The fields below carry the JSON names of kubevirt.io/api/core/v1
// (VirtualMachine) and k8s.io/api/core/v1 (Service); only what is
// written is declared.

type meta struct {
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   meta   `json:"metadata"`
	Spec       any    `json:"spec"`
}

type vmSpec struct {
	RunStrategy         string               `json:"runStrategy"`
	DataVolumeTemplates []dataVolumeTemplate `json:"dataVolumeTemplates,omitempty"`
	Template            vmTemplate           `json:"template"`
}

// dataVolumeTemplate is a CDI DataVolume (cdi.kubevirt.io/v1beta1)
// KubeVirt creates with the VM and keeps when the VM instance stops.
type dataVolumeTemplate struct {
	Metadata meta           `json:"metadata"`
	Spec     dataVolumeSpec `json:"spec"`
}

type dataVolumeSpec struct {
	Source  dvSource  `json:"source"`
	Storage dvStorage `json:"storage"`
}

type dvSource struct {
	Registry dvRegistry `json:"registry"`
}

type dvRegistry struct {
	URL string `json:"url"`
}

type dvStorage struct {
	Resources resources `json:"resources"`
}

type vmTemplate struct {
	Metadata meta    `json:"metadata"`
	Spec     vmiSpec `json:"spec"`
}

type vmiSpec struct {
	Domain                        domain    `json:"domain"`
	Networks                      []network `json:"networks"`
	Volumes                       []volume  `json:"volumes"`
	TerminationGracePeriodSeconds int64     `json:"terminationGracePeriodSeconds"`
}

type domain struct {
	CPU       cpu       `json:"cpu"`
	Memory    memory    `json:"memory"`
	Firmware  firmware  `json:"firmware"`
	Features  features  `json:"features"`
	Devices   devices   `json:"devices"`
	Resources resources `json:"resources"`
}

type cpu struct {
	Cores uint32 `json:"cores"`
}

type memory struct {
	Guest string `json:"guest"`
}

type resources struct {
	Requests map[string]string `json:"requests"`
}

type firmware struct {
	Bootloader bootloader `json:"bootloader"`
}

type bootloader struct {
	EFI efi `json:"efi"`
}

type efi struct {
	SecureBoot *bool `json:"secureBoot"`
}

// features: ACPI for the power button, which stops the container
// gracefully (STOPSIGNAL, then --stop-timeout).
type features struct {
	ACPI struct{} `json:"acpi"`
	SMM  enabled  `json:"smm"`
}

type enabled struct {
	Enabled *bool `json:"enabled"`
}

type devices struct {
	Disks                   []disk  `json:"disks"`
	Interfaces              []iface `json:"interfaces"`
	LogSerialConsole        *bool   `json:"logSerialConsole"`
	AutoattachSerialConsole *bool   `json:"autoattachSerialConsole"`
}

type disk struct {
	Name      string     `json:"name"`
	BootOrder *uint      `json:"bootOrder,omitempty"`
	Disk      diskTarget `json:"disk"`
}

type diskTarget struct {
	Bus string `json:"bus"`
}

type iface struct {
	Name       string   `json:"name"`
	Masquerade struct{} `json:"masquerade"`
	Ports      []port   `json:"ports,omitempty"`
}

type port struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Port     int32  `json:"port"`
}

type network struct {
	Name string   `json:"name"`
	Pod  struct{} `json:"pod"`
}

type volume struct {
	Name          string         `json:"name"`
	ContainerDisk *containerDisk `json:"containerDisk,omitempty"`
	DataVolume    *dataVolumeRef `json:"dataVolume,omitempty"`
}

type dataVolumeRef struct {
	Name string `json:"name"`
}

type containerDisk struct {
	Image           string `json:"image"`
	ImagePullPolicy string `json:"imagePullPolicy"`
}

type serviceSpec struct {
	Selector map[string]string `json:"selector"`
	Ports    []servicePort     `json:"ports"`
}

type servicePort struct {
	Name       string `json:"name"`
	Protocol   string `json:"protocol"`
	Port       int32  `json:"port"`
	TargetPort int32  `json:"targetPort"`
}

// label selects the VM's pod for the Service (KubeVirt copies the
// template's labels onto the virt-launcher pod).
const label = "vm.c2vm.io/name"

func ptr[T any](v T) *T { return &v }

func virtualMachine(vm VM) object {
	labels := map[string]string{label: vm.Name}
	mem := fmt.Sprintf("%dMi", vm.Memory)
	disks, volumes, templates := vmDisks(vm)
	return object{APIVersion: "kubevirt.io/v1", Kind: "VirtualMachine", Metadata: meta{Name: vm.Name, Labels: labels},
		Spec: vmSpec{RunStrategy: "Always", DataVolumeTemplates: templates, Template: vmTemplate{Metadata: meta{Labels: labels}, Spec: vmiSpec{
			Domain: domain{
				CPU:    cpu{Cores: uint32(vm.CPUs)},
				Memory: memory{Guest: mem},
				// UEFI without Secure Boot: c2vm's UKI is not signed
				// (KubeVirt needs SMM only for Secure Boot).
				Firmware:  firmware{Bootloader: bootloader{EFI: efi{SecureBoot: ptr(false)}}},
				Features:  features{SMM: enabled{Enabled: ptr(false)}},
				Devices:   devices{Disks: disks, Interfaces: []iface{{Name: "default", Ports: ifacePorts(vm.Ports)}}, LogSerialConsole: ptr(true), AutoattachSerialConsole: ptr(true)},
				Resources: resources{Requests: map[string]string{"memory": mem}},
			},
			Networks:                      []network{{Name: "default"}},
			Volumes:                       volumes,
			TerminationGracePeriodSeconds: int64(vm.StopTimeout + stopMargin),
		}}}}
}

// vmDisks lists the data volumes' disks first, then the containerDisk,
// which UEFI boots (bootOrder 1). KubeVirt names virtio disks in list
// order (vda, vdb, ...), and the guest init takes the first device, by
// name, holding a volume's label: the DataVolume (vda) rather than the
// same-labelled partition of the containerDisk (vdX3), whose writes
// KubeVirt's ephemeral overlay drops when the VM instance stops.
func vmDisks(vm VM) ([]disk, []volume, []dataVolumeTemplate) {
	var disks []disk
	var volumes []volume
	var templates []dataVolumeTemplate
	for i, v := range vm.Volumes {
		n := fmt.Sprintf("data-%d", i)
		dv := vm.Name + "-" + n
		disks = append(disks, disk{Name: n, Disk: diskTarget{Bus: "virtio"}})
		volumes = append(volumes, volume{Name: n, DataVolume: &dataVolumeRef{Name: dv}})
		templates = append(templates, dataVolumeTemplate{Metadata: meta{Name: dv}, Spec: dataVolumeSpec{
			Source:  dvSource{Registry: dvRegistry{URL: "docker://" + v.Image}},
			Storage: dvStorage{Resources: resources{Requests: map[string]string{"storage": claimSize(v.Size)}}},
		}})
	}
	disks = append(disks, disk{Name: "containerdisk", BootOrder: ptr(uint(1)), Disk: diskTarget{Bus: "virtio"}})
	volumes = append(volumes, volume{Name: "containerdisk", ContainerDisk: &containerDisk{Image: vm.Image, ImagePullPolicy: "IfNotPresent"}})
	return disks, volumes, templates
}

// claimSize is a claim that holds a disk of size bytes once CDI has
// taken its file system overhead (5.5% by default): 10% more, in MiB.
func claimSize(size int64) string {
	const mi = 1 << 20
	return fmt.Sprintf("%dMi", (size+size/10+mi-1)/mi)
}

func portName(p plan.Port) string { return fmt.Sprintf("%s-%d", p.Proto, p.Port) }

func ifacePorts(ps []plan.Port) []port {
	var out []port
	for _, p := range ps {
		out = append(out, port{Name: portName(p), Protocol: strings.ToUpper(p.Proto), Port: int32(p.Port)})
	}
	return out
}

func service(vm VM) object {
	var ports []servicePort
	for _, p := range vm.Ports {
		ports = append(ports, servicePort{Name: portName(p), Protocol: strings.ToUpper(p.Proto), Port: int32(p.Port), TargetPort: int32(p.Port)})
	}
	return object{APIVersion: "v1", Kind: "Service", Metadata: meta{Name: vm.Name},
		Spec: serviceSpec{Selector: map[string]string{label: vm.Name}, Ports: ports}}
}
