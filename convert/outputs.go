package convert

import "context"

// An output is something convert writes beside the root filesystem, the
// kernel and the initramfs: the dm-verity tree, the hypervisor configs,
// the disk image. Outputs are a table, after LinuxKit's moby/output.go
// (outFuns, ValidateFormats): every wanted output's options are checked
// before any work starts, then each is written in its phase.
//
// To add one: write it in a file of its own as an output value — its
// name, its phase, when it is wanted, its check of the options and its
// writer — add it to outputs, and name its files in vmdir (the contract
// of the directory). The writer puts its files into the stage
// (c.st.path) and records what a reader needs in c.manifest; every file
// of the stage is listed in manifest.json with its digest.
type output struct {
	name  string // for tests: each output's is its own
	phase phase
	// wanted reports whether the options ask for the output; nil: always.
	wanted func(o *Options) bool
	// check refuses options the output cannot serve, before any work;
	// nil: none.
	check func(o *Options) error
	write func(c *conversion, ctx context.Context) error // a method expression: (*conversion).writeX
}

// phase is when an output is written, by what it needs.
type phase int

const (
	// afterRootfs: rootfs.img is complete, the flattened tree (c.tree)
	// open; the boot plan is not made yet (it takes the verity tree).
	afterRootfs phase = iota
	// afterBoot: the kernel, initramfs.img and boot.json are written and
	// the manifest names the VM's arch, kernel, forwards, data disks and
	// verity tree (vmdir.Config reads them). Skipped with NoKernel.
	afterBoot
	// beforeManifest: every artifact but manifest.json is written, and
	// the parts the VM is made of are known (c.parts).
	beforeManifest
	// afterManifest: manifest.json is written; what follows is not
	// listed in it.
	afterManifest
)

// outputs are convert's outputs, written in this order within a phase.
var outputs = []output{
	verityOutput,       // verity.go
	configsOutput,      // vmconfig.go: one per vmconfig.All() target
	diskOutput,         // disk.go
	sbomOutput,         // supply.go
	attestationsOutput, // supply.go
	provenanceOutput,   // supply.go
}

// checkOutputs checks every wanted output's options.
func checkOutputs(o *Options) error {
	for _, out := range outputs {
		if out.check == nil || out.wanted != nil && !out.wanted(o) {
			continue
		}
		if err := out.check(o); err != nil {
			return err
		}
	}
	return nil
}

// writeOutputs returns the step that writes the wanted outputs of phase p.
func (c *conversion) writeOutputs(p phase) func(context.Context) error {
	return func(ctx context.Context) error {
		if p == afterBoot && c.o.NoKernel {
			return nil
		}
		for _, out := range outputs {
			if out.phase != p || out.wanted != nil && !out.wanted(&c.o) {
				continue
			}
			if err := out.write(c, ctx); err != nil {
				return err // named by the output
			}
		}
		return nil
	}
}
