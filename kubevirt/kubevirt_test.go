package kubevirt

import (
	"bytes"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

func TestWrite(t *testing.T) {
	var b bytes.Buffer
	vm := VM{Name: "web", Image: "reg.example/vm/web@sha256:" + strings.Repeat("a", 64), Memory: 256, CPUs: 2,
		Ports: []plan.Port{{Port: 80, Proto: "tcp"}, {Port: 53, Proto: "udp"}}, StopTimeout: 10}
	if err := Write(&b, vm); err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(b.String(), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("%d documents, want a VirtualMachine and a Service:\n%s", len(docs), b.String())
	}
	var got struct {
		Spec struct {
			Template struct {
				Spec struct {
					Domain struct {
						Firmware struct {
							Bootloader struct {
								EFI struct {
									SecureBoot *bool `json:"secureBoot"`
								} `json:"efi"`
							} `json:"bootloader"`
						} `json:"firmware"`
						Devices struct {
							Interfaces []struct {
								Ports []struct {
									Port int `json:"port"`
								} `json:"ports"`
							} `json:"interfaces"`
							LogSerialConsole bool `json:"logSerialConsole"`
						} `json:"devices"`
						Memory struct {
							Guest string `json:"guest"`
						} `json:"memory"`
					} `json:"domain"`
					Grace   int `json:"terminationGracePeriodSeconds"`
					Volumes []struct {
						ContainerDisk struct {
							Image string `json:"image"`
						} `json:"containerDisk"`
					} `json:"volumes"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(docs[0]), &got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec.Template.Spec
	d := s.Domain
	switch {
	case d.Firmware.Bootloader.EFI.SecureBoot == nil || *d.Firmware.Bootloader.EFI.SecureBoot:
		t.Error("secureBoot is not false")
	case len(d.Devices.Interfaces) != 1 || len(d.Devices.Interfaces[0].Ports) != 2 || d.Devices.Interfaces[0].Ports[0].Port != 80:
		t.Errorf("interfaces %+v", d.Devices.Interfaces)
	case !d.Devices.LogSerialConsole:
		t.Error("the serial console is not logged")
	case d.Memory.Guest != "256Mi":
		t.Errorf("memory %q", d.Memory.Guest)
	case s.Grace != 10+stopMargin:
		t.Errorf("terminationGracePeriodSeconds %d", s.Grace)
	case len(s.Volumes) != 1 || s.Volumes[0].ContainerDisk.Image != vm.Image:
		t.Errorf("volumes %+v", s.Volumes)
	}
	if !strings.Contains(docs[1], "kind: Service") || !strings.Contains(docs[1], "protocol: UDP") {
		t.Errorf("service:\n%s", docs[1])
	}
}

func TestWriteRefuses(t *testing.T) {
	pinned := "r/x@sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		vm   VM
		want string
	}{
		{VM{Name: "Web_1", Image: pinned}, "not a DNS-1123 label"},
		{VM{Name: "web", Image: "r/x:latest"}, "not pinned by digest"},
	} {
		if err := Write(&bytes.Buffer{}, tc.vm); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.vm, err, tc.want)
		}
	}
	// No EXPOSE: no Service.
	var b bytes.Buffer
	if err := Write(&b, VM{Name: "job", Image: pinned}); err != nil || strings.Contains(b.String(), "Service") {
		t.Errorf("without ports: %v\n%s", err, b.String())
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:5000/vm/web": "web", "reg/My_App.v2": "my-app-v2", "reg/__": "vm"} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWriteVolumes: each VOLUME is a DataVolume imported from its pushed
// image, its disk listed before the containerDisk (vda: the guest takes
// the first device with the volume's label), the containerDisk booted.
func TestWriteVolumes(t *testing.T) {
	pinned := "r/web@sha256:" + strings.Repeat("a", 64)
	data := "r/web@sha256:" + strings.Repeat("b", 64)
	var b bytes.Buffer
	if err := Write(&b, VM{Name: "web", Image: pinned, Memory: 512, CPUs: 1, Volumes: []Volume{{Image: data, Size: 1 << 30}}}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Spec struct {
			DataVolumeTemplates []struct {
				Metadata struct{ Name string } `json:"metadata"`
				Spec     struct {
					Source struct {
						Registry struct{ URL string } `json:"registry"`
					} `json:"source"`
					Storage struct {
						Resources struct {
							Requests map[string]string `json:"requests"`
						} `json:"resources"`
					} `json:"storage"`
				} `json:"spec"`
			} `json:"dataVolumeTemplates"`
			Template struct {
				Spec struct {
					Domain struct {
						Devices struct {
							Disks []struct {
								Name      string `json:"name"`
								BootOrder int    `json:"bootOrder"`
							} `json:"disks"`
						} `json:"devices"`
					} `json:"domain"`
					Volumes []struct {
						Name       string `json:"name"`
						DataVolume *struct {
							Name string `json:"name"`
						} `json:"dataVolume"`
					} `json:"volumes"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	dvs, spec := got.Spec.DataVolumeTemplates, got.Spec.Template.Spec
	switch {
	case len(dvs) != 1 || dvs[0].Metadata.Name != "web-data-0" || dvs[0].Spec.Source.Registry.URL != "docker://"+data:
		t.Errorf("dataVolumeTemplates %+v", dvs)
	case dvs[0].Spec.Storage.Resources.Requests["storage"] != "1127Mi":
		t.Errorf("storage %v", dvs[0].Spec.Storage.Resources.Requests)
	case len(spec.Domain.Devices.Disks) != 2 || spec.Domain.Devices.Disks[0].Name != "data-0" || spec.Domain.Devices.Disks[1].BootOrder != 1:
		t.Errorf("disks %+v: want data-0, then the containerDisk booted", spec.Domain.Devices.Disks)
	case len(spec.Volumes) != 2 || spec.Volumes[0].DataVolume == nil || spec.Volumes[0].DataVolume.Name != "web-data-0":
		t.Errorf("volumes %+v", spec.Volumes)
	}
}
