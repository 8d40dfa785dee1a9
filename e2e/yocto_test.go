package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// TestYoctoLayer runs real bitbake with openembedded-core on recipes/
// (shared/yocto/parse.sh, offline): the layer parses for two machines with
// no error or warning naming it, the recipes' variables are what the
// layer means (its Go build offline, the platform and kernel per
// MACHINE), and the example appliance's task graph has the conversion
// after c2vm-native's sysroot, the kernel's deploy and the image, and
// before do_build through do_deploy. Building needs the network (the
// toolchain); internal/yoctomods' TestOfflineBuild checks the Go build.
func TestYoctoLayer(t *testing.T) {
	parse := yoctoParse(t)
	layer, build := yoctoDirs(t)
	bitbake := func(t *testing.T, machine string, args ...string) string {
		t.Helper()
		cmd := exec.Command("bash", append([]string{parse, layer, machine, "--"}, args...)...)
		cmd.Env = append(os.Environ(), "C2VM_YOCTO_BUILD="+build)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("parse.sh %s -- %s: %v\n%s", machine, strings.Join(args, " "), err, tail(string(out), 60))
		}
		return string(out)
	}
	inc, err := os.ReadFile(filepath.Join(fixtures.RepoRoot(), "recipes", "recipes-devtools", "c2vm", "c2vm-go-mods.inc"))
	if err != nil {
		t.Fatal(err)
	}
	mods := strings.Count(string(inc), "gomod://")

	for _, tc := range []struct {
		machine, platform, kernel string
	}{
		{"qemux86-64", "linux/amd64", "bzImage"},
		{"qemuarm64", "linux/arm64", "Image"},
	} {
		t.Run(tc.machine, func(t *testing.T) {
			out := bitbake(t, tc.machine, "-p")
			for _, l := range strings.Split(out, "\n") {
				if (strings.Contains(l, "ERROR") || strings.Contains(l, "WARNING")) && strings.Contains(strings.ToLower(l), "c2vm") {
					t.Errorf("bitbake -p: %s", l)
				}
			}

			env := bitbake(t, tc.machine, "-e", "c2vm-native")
			for k, want := range map[string]string{
				"GOPROXY":          "off",
				"GOTOOLCHAIN":      "local",
				"GO_INSTALL":       "github.com/c2vm/c2vm/cmd/c2vm",
				"C2VM_INIT_ARCHES": "amd64 arm64 riscv64",
			} {
				if got := bbVar(env, k); got != want {
					t.Errorf("c2vm-native %s = %q, want %q", k, got, want)
				}
			}
			// bitbake sorts the series; oe-core's LAYERSERIES_CORENAMES
			// (meta/conf/layer.conf) is "wrynose blacksail".
			if got := strings.Fields(bbVar(env, "LAYERSERIES_COMPAT_c2vm")); !slices.Contains(got, "wrynose") || !slices.Contains(got, "blacksail") {
				t.Errorf("LAYERSERIES_COMPAT_c2vm = %q, want oe-core's wrynose and blacksail", got)
			}
			if n := strings.Count(bbVar(env, "SRC_URI"), "gomod://"); n != mods {
				t.Errorf("c2vm-native SRC_URI has %d gomod:// entries, the .inc %d", n, mods)
			}
			if !strings.Contains(bbVar(env, "DEPENDS"), "go-native") {
				t.Errorf("c2vm-native DEPENDS %q lacks go-native", bbVar(env, "DEPENDS"))
			}

			env = bitbake(t, tc.machine, "-e", "c2vm-example-appliance")
			if got := bbVar(env, "C2VM_PLATFORM"); got != tc.platform {
				t.Errorf("C2VM_PLATFORM = %q, want %q", got, tc.platform)
			}
			if got := bbVar(env, "C2VM_KERNEL"); filepath.Base(got) != tc.kernel {
				t.Errorf("C2VM_KERNEL = %q, want DEPLOY_DIR_IMAGE/%s", got, tc.kernel)
			}
			if got := bbVar(env, "C2VM_KERNEL_MODULES"); filepath.Base(got) != "modules-"+tc.machine+".tgz" {
				t.Errorf("C2VM_KERNEL_MODULES = %q", got)
			}
			if got := bbVar(env, "C2VM_SOURCE"); !strings.HasPrefix(got, "oci:") || !strings.HasSuffix(got, "/core-image-minimal-"+tc.machine+"-oci") {
				t.Errorf("C2VM_SOURCE = %q, want oci:DEPLOY_DIR_IMAGE/core-image-minimal-%s-oci", got, tc.machine)
			}
		})
	}

	t.Run("task graph", func(t *testing.T) {
		bitbake(t, "qemux86-64", "-g", "c2vm-example-appliance")
		dot, err := os.ReadFile(filepath.Join(build, "task-depends.dot"))
		if err != nil {
			t.Fatal(err)
		}
		edges := map[string]bool{}
		for _, m := range regexp.MustCompile(`"([^"]+)" -> "([^"]+)"`).FindAllStringSubmatch(string(dot), -1) {
			edges[m[1]+" -> "+m[2]] = true
		}
		for _, e := range []string{
			"c2vm-example-appliance.do_c2vm_convert -> c2vm-native.do_populate_sysroot",
			"c2vm-example-appliance.do_c2vm_convert -> linux-yocto.do_deploy",
			"c2vm-example-appliance.do_c2vm_convert -> core-image-minimal.do_image_complete",
			"c2vm-example-appliance.do_deploy -> c2vm-example-appliance.do_c2vm_convert",
			"c2vm-example-appliance.do_build -> c2vm-example-appliance.do_deploy",
			// c2vm-native's modules are fetched by bitbake.
			"c2vm-native.do_unpack -> c2vm-native.do_fetch",
		} {
			if !edges[e] {
				t.Errorf("task-depends.dot has no edge %s", e)
			}
		}
		// It is compiled by oe-core's Go: go-native, which oe-core's
		// go-binary-native recipe PROVIDES.
		if !edges["c2vm-native.do_prepare_recipe_sysroot -> go-native.do_populate_sysroot"] &&
			!edges["c2vm-native.do_prepare_recipe_sysroot -> go-binary-native.do_populate_sysroot"] {
			t.Errorf("task-depends.dot: c2vm-native's sysroot has no go-native")
		}
		if t.Failed() {
			for e := range edges {
				if strings.HasPrefix(e, "c2vm") {
					t.Log(e)
				}
			}
		}
	})
}

// bbVar is the value of an unexported or exported assignment in `bitbake
// -e` output.
func bbVar(env, name string) string {
	m := regexp.MustCompile(`(?m)^(?:export )?` + regexp.QuoteMeta(name) + `="(.*)"$`).FindStringSubmatch(env)
	if m == nil {
		return ""
	}
	return strings.Join(strings.Fields(m[1]), " ")
}

// yoctoParse finds shared/yocto/parse.sh: $C2VM_YOCTO, else the nearest
// shared/yocto beside the checkout or one of its parents (CI has
// ../shared/yocto next to the project).
func yoctoParse(t *testing.T) string {
	t.Helper()
	fixtures.NeedTools(t, "bash", "python3")
	if d := os.Getenv("C2VM_YOCTO"); d != "" {
		p := filepath.Join(d, "parse.sh")
		if _, err := os.Stat(p); err != nil {
			fixtures.Skip(t, "C2VM_YOCTO=%s: %v", d, err)
		}
		return p
	}
	root, err := filepath.Abs(fixtures.RepoRoot())
	if err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(root); ; d = filepath.Dir(d) {
		p := filepath.Join(d, "shared", "yocto", "parse.sh")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	fixtures.Skip(t, "no shared/yocto/parse.sh beside %s or its parents (set C2VM_YOCTO)", root)
	return ""
}

// yoctoDirs copies the layer (mtimes kept, so bitbake's parse cache stays
// valid) next to the build dir parse.sh uses, both where the unprivileged
// user parse.sh runs bitbake as when we are root can reach them:
// $C2VM_CACHE/yocto when every parent lets others in, else
// /var/tmp/c2vm-yocto.
func yoctoDirs(t *testing.T) (layer, build string) {
	t.Helper()
	fixtures.NeedTools(t, "cp")
	dir := filepath.Join(cacheDir(t), "yocto")
	if os.Geteuid() == 0 && !othersCanEnter(filepath.Dir(dir)) {
		dir = "/var/tmp/c2vm-yocto"
	}
	layer, build = filepath.Join(dir, "layer"), filepath.Join(dir, "build")
	if err := os.RemoveAll(layer); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(build, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(fixtures.RepoRoot(), "recipes"), layer).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return layer, build
}

func othersCanEnter(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}
