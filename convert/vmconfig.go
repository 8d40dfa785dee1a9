package convert

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/c2vm/c2vm/vmconfig"
	"github.com/c2vm/c2vm/vmdir"
)

// configsOutput is the hypervisor configs: qemu.sh, libvirt.xml, xl.cfg
// and firecracker.json, one per vmconfig.All() target (each in a file of
// its own in vmconfig; a new hypervisor is a new target there). Paths
// inside them name the final directory, not the temp one.
var configsOutput = output{
	name:  "configs",
	phase: afterBoot,
	write: (*conversion).writeConfigs,
}

func (c *conversion) writeConfigs(context.Context) error {
	return writeTargets(c.st, vmconfig.All(), vmdir.Config(&c.manifest, c.st.target))
}

// writeTargets writes each hypervisor config for vm into the stage.
func writeTargets[VM any, T interface {
	Name() string
	Write(io.Writer, VM) error
}](st *stage, targets []T, vm VM) error {
	for _, t := range targets {
		var buf bytes.Buffer
		if err := t.Write(&buf, vm); err != nil {
			return fmt.Errorf("writing %s: %w", t.Name(), err)
		}
		if err := writeConfig(st.path(t.Name()), buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}
