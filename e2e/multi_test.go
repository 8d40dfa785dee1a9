package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
	"github.com/c2vm/c2vm/provenance"
	"github.com/c2vm/c2vm/vmdir"
)

// TestConvertAllPlatforms is issue 12's "every platform in one run": the
// multi-arch fixture converted with --platform all (one kernel and init
// per arch) gives linux-amd64 and linux-arm64, each byte for byte what
// converting that platform alone writes (but the files naming their
// directory), listed in a top manifest.json; each boots under plain QEMU
// and runs the container. Pulled from a real registry with auth, the
// same run gives the same root filesystems.
func TestConvertAllPlatforms(t *testing.T) {
	if testing.Short() {
		t.Skip("boots two VMs")
	}
	fixtures.NeedTools(t, "jq")
	multi := "oci:" + filepath.Join(fixtures.Dir(t), "busybox-multi") + ":latest"
	archs := []string{"amd64", "arm64"}
	debs, inits := map[string]string{}, map[string]string{}
	var kernelArg, initArg []string
	for _, a := range archs {
		debs[a], inits[a] = testkernel.Deb(t, a), initFor(t, a)
		kernelArg = append(kernelArg, a+"="+debs[a])
		initArg = append(initArg, a+"="+inits[a])
	}
	out := t.TempDir()
	all := filepath.Join(out, "all.vm")
	code, stdout, stderr := run("convert", "--platform", "all", "--kernel", strings.Join(kernelArg, ","),
		"--init", strings.Join(initArg, ","), "--json", "-o", all, multi)
	if code != 0 {
		t.Fatalf("convert --platform all: exit %d: %s", code, stderr)
	}
	for _, a := range archs {
		if !strings.Contains(stderr, "c2vm: linux/"+a+": kernel: ") {
			t.Errorf("no kernel progress line prefixed with linux/%s:\n%s", a, stderr)
		}
	}
	jq(t, stdout, `(.platforms | map(.image.platform.architecture)) == ["amd64", "arm64"] and .dir == $dir
		and (.platforms | map(.dir)) == [$dir + "/linux-amd64", $dir + "/linux-arm64"]
		and (.platforms | all(.kernel.arch != null and (.artifacts["rootfs.img"].sha256 | length) == 64))
		and (.artifacts["manifest.json"].sha256 | length) == 64 and (.image.indexDigest | startswith("sha256:"))`, "--arg", "dir", all)
	top, err := os.ReadFile(filepath.Join(all, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	jq(t, string(top), `(.platforms | map(.dir)) == ["linux-amd64", "linux-arm64"] and (.platforms | all((.manifest.sha256 | length) == 64))`)

	for _, a := range archs {
		t.Run(a, func(t *testing.T) {
			sub := filepath.Join(all, "linux-"+a)
			single := filepath.Join(out, "single-"+a)
			mustConvert(t, "--platform", "linux/"+a, "--kernel", debs[a], "--init", inits[a], "-o", single, multi)
			sameOutputs(t, single, sub)
			console := qemuPlain(t, a, sub, "")
			if !strings.Contains(console, "uid=1000(app)") || !strings.Contains(console, "hello from c2vm") {
				t.Errorf("the container did not run:\n%s", tail(console, 40))
			}
			if got := exitStatus(t, console); got != 0 {
				t.Errorf("exit status %d, want 0", got)
			}
		})
	}

	t.Run("registry", func(t *testing.T) {
		reg := startRegistry(t)
		reg.push(t, multi, "c2vm/busybox:latest")
		noCredentials(t)
		pulled := filepath.Join(out, "pulled.vm")
		code, _, stderr := run("convert", "-q", "--platform", "linux/arm64,linux/amd64", "--no-kernel", "--creds", reg.creds(),
			"docker://"+reg.host+"/c2vm/busybox:latest", "-o", pulled)
		if code != 0 {
			t.Fatalf("convert from the registry: exit %d: %s", code, stderr)
		}
		for _, a := range archs {
			if !sameFile(t, filepath.Join(all, "linux-"+a, "rootfs.img"), filepath.Join(pulled, "linux-"+a, "rootfs.img")) {
				t.Errorf("linux-%s/rootfs.img pulled from the registry differs from the local layout's", a)
			}
		}
	})
}

// sameOutputs checks that two output directories of one platform hold the
// same files with the same bytes, but for their own paths (libvirt.xml,
// xl.cfg and firecracker.json name their directory) and, in manifest.json,
// those files' digests.
func sameOutputs(t *testing.T, want, got string) {
	t.Helper()
	entries, err := os.ReadDir(want)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := os.ReadDir(got)
	if len(names) != len(entries) {
		t.Errorf("%s holds %d files, %s %d", got, len(names), want, len(entries))
	}
	naming := map[string]bool{}
	for _, e := range entries {
		a, _ := os.ReadFile(filepath.Join(want, e.Name()))
		b, err := os.ReadFile(filepath.Join(got, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(got)) {
			naming[e.Name()] = true
			b = bytes.ReplaceAll(b, []byte(got), []byte(want))
		}
		if e.Name() == vmdir.Provenance {
			continue // compared below, once every path-naming file is known
		}
		if e.Name() != "manifest.json" && !bytes.Equal(a, b) {
			t.Errorf("%s differs from the single-platform conversion's", e.Name())
		}
	}
	wm, err := vmdir.ReadManifest(want)
	if err != nil {
		t.Fatal(err)
	}
	gm, err := vmdir.ReadManifest(got)
	if err != nil {
		t.Fatal(err)
	}
	for n := range naming {
		delete(wm.Artifacts, n)
		delete(gm.Artifacts, n)
	}
	if !reflect.DeepEqual(wm, gm) {
		t.Errorf("manifest.json: %+v\nsingle-platform: %+v", gm, wm)
	}
	sameProvenance(t, want, got, naming)
	t.Logf("identical but for their own paths: %v", naming)
}

// sameProvenance checks that two provenance statements of one platform agree
// but for what legitimately differs: the conversion's own flags
// (externalParameters: --platform all against linux/ARCH) and the digests of
// manifest.json and the files that name their directory.
func sameProvenance(t *testing.T, want, got string, naming map[string]bool) {
	t.Helper()
	read := func(dir string) *provenance.Statement {
		b, err := os.ReadFile(filepath.Join(dir, vmdir.Provenance))
		if err != nil {
			t.Fatal(err)
		}
		var s provenance.Statement
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		s.Predicate.BuildDefinition.ExternalParameters = nil
		kept := s.Subject[:0]
		for _, r := range s.Subject {
			if r.Name != "manifest.json" && !naming[r.Name] {
				kept = append(kept, r)
			}
		}
		s.Subject = kept
		return &s
	}
	w, g := read(want), read(got)
	if len(w.Subject) == 0 {
		t.Errorf("%s: no subjects left to compare", vmdir.Provenance)
	}
	if !reflect.DeepEqual(w, g) {
		t.Errorf("%s differs from the single-platform conversion's beyond its flags:\n%+v\nsingle-platform: %+v", vmdir.Provenance, g, w)
	}
}
