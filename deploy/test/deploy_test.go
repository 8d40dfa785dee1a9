// Package test decodes the manifests c2vm ships (deploy/k8s, deploy/tekton)
// and writes (c2vm push --kubevirt) into Kubernetes' own API types. It is a
// module of its own so that k8s.io/api stays out of c2vm's.
package test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/kubevirt"
)

// roundTrip decodes doc strictly (an unknown field is an error) into v,
// encodes v again, and fails if any field of doc is missing or changed.
func roundTrip(t *testing.T, doc []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("decoding into %T: %v", v, err)
	}
	back, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := yaml.Unmarshal(doc, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(back, &got); err != nil {
		t.Fatal(err)
	}
	lost(t, "", want, got)
}

// lost reports every value of want that got lacks or changed; got may
// hold more (defaults the types write back, such as creationTimestamp).
func lost(t *testing.T, path string, want, got any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: lost (got %v)", path, got)
			return
		}
		for k, v := range w {
			lost(t, path+"."+k, v, g[k])
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			t.Errorf("%s: lost (got %v)", path, got)
			return
		}
		for i := range w {
			lost(t, path+"["+strconv.Itoa(i)+"]", w[i], g[i])
		}
	default:
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s: %v became %v", path, want, got)
		}
	}
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJob: the conversion Job is a batch/v1 Job whose every container
// runs unprivileged: not root, no privilege escalation, every capability
// dropped, no device (no /dev/kvm) and no host path.
func TestJob(t *testing.T) {
	var job batchv1.Job
	roundTrip(t, read(t, "../k8s/job.yaml"), &job)
	pod := job.Spec.Template.Spec
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("pod security context %+v: want runAsNonRoot and a non-zero runAsUser", sc)
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s is a host path", v.Name)
		}
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		checkUnprivileged(t, c.Name, c.SecurityContext)
		if len(c.Resources.Limits) > 0 {
			for r := range c.Resources.Limits {
				if strings.Contains(string(r), "kvm") {
					t.Errorf("%s asks for %s", c.Name, r)
				}
			}
		}
		if c.Image != "c2vm:latest" || len(c.Command) != 0 {
			t.Errorf("%s runs %s %v: want the Dockerfile's image and its entrypoint", c.Name, c.Image, c.Command)
		}
	}
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].Args[0] != "convert" || len(pod.Containers) != 1 || pod.Containers[0].Args[0] != "push" {
		t.Errorf("want convert then push")
	}
}

func checkUnprivileged(t *testing.T, name string, sc *corev1.SecurityContext) {
	t.Helper()
	switch {
	case sc == nil:
		t.Errorf("%s: no security context", name)
	case sc.Privileged != nil && *sc.Privileged:
		t.Errorf("%s: privileged", name)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: privilege escalation allowed", name)
	case sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("%s: capabilities %+v, want every one dropped", name, sc.Capabilities)
	}
}

// TestTektonTask: Tekton's Go types are not served by the module proxy
// here (github.com/tektoncd/pipeline: 403), so the Task is read as YAML
// and its pieces that are Kubernetes types (the step template's security
// context and environment) are decoded strictly into k8s.io/api's.
func TestTektonTask(t *testing.T) {
	var task struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			StepTemplate struct {
				Env             []corev1.EnvVar         `json:"env"`
				SecurityContext *corev1.SecurityContext `json:"securityContext"`
			} `json:"stepTemplate"`
			Steps []struct {
				Name   string   `json:"name"`
				Image  string   `json:"image"`
				Args   []string `json:"args"`
				Script string   `json:"script"`
			} `json:"steps"`
			Results []struct {
				Name string `json:"name"`
			} `json:"results"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(read(t, "../tekton/task.yaml"), &task); err != nil {
		t.Fatal(err)
	}
	if task.APIVersion != "tekton.dev/v1" || task.Kind != "Task" {
		t.Errorf("%s %s, want tekton.dev/v1 Task", task.APIVersion, task.Kind)
	}
	sc := task.Spec.StepTemplate.SecurityContext
	checkUnprivileged(t, "stepTemplate", sc)
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("stepTemplate: runAsNonRoot not set")
	}
	if len(task.Spec.Steps) != 2 || task.Spec.Steps[0].Args[0] != "convert" || !strings.Contains(task.Spec.Steps[1].Script, "c2vm push ") {
		t.Errorf("steps %+v: want convert then push", task.Spec.Steps)
	}
}

// TestKubevirtService: the Service c2vm push --kubevirt writes decodes
// into k8s.io/api's Service with no field lost; the VirtualMachine's
// memory is a valid quantity and its resources a ResourceList.
// (kubevirt.io/api is not served by the module proxy here: 403.)
func TestKubevirtService(t *testing.T) {
	var b bytes.Buffer
	err := kubevirt.Write(&b, kubevirt.VM{Name: "web", Image: "reg.example/vm/web@sha256:" + strings.Repeat("0", 64),
		Memory: 256, CPUs: 1, Ports: []plan.Port{{Port: 8080, Proto: "tcp"}, {Port: 53, Proto: "udp"}}, StopTimeout: 10})
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(b.String(), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("%d documents", len(docs))
	}
	var svc corev1.Service
	roundTrip(t, []byte(docs[1]), &svc)
	if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[1].Protocol != corev1.ProtocolUDP {
		t.Errorf("service ports %+v", svc.Spec.Ports)
	}
	var vm struct {
		Spec struct {
			Template struct {
				Spec struct {
					Domain struct {
						Memory struct {
							Guest resource.Quantity `json:"guest"`
						} `json:"memory"`
						Resources struct {
							Requests corev1.ResourceList `json:"requests"`
						} `json:"resources"`
					} `json:"domain"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(docs[0]), &vm); err != nil {
		t.Fatal(err)
	}
	d := vm.Spec.Template.Spec.Domain
	if d.Memory.Guest.Value() != 256<<20 || d.Resources.Requests.Memory().Cmp(d.Memory.Guest) != 0 {
		t.Errorf("memory %s, requests %v", d.Memory.Guest.String(), d.Resources.Requests)
	}
}
