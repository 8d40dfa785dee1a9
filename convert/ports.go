package convert

import (
	"context"

	"github.com/c2vm/c2vm/bootcfg"
	"github.com/c2vm/c2vm/bootcfg/plan"
)

// writeForwards records the image's EXPOSEd ports and the forwards the
// configs carry (forwards) in the manifest. EXPOSE is untrusted: a bad
// key refuses the conversion.
func (c *conversion) writeForwards(context.Context) error {
	exposed, fwds, err := c.forwards()
	if err != nil {
		return err
	}
	c.manifest.Exposed, c.manifest.Forwards = exposed, fwds
	return nil
}

// forwards reads the image's EXPOSEd ports (an invalid key refuses the
// image: bootcfg.Exposed) and merges them with --publish into the
// forwards the configs carry: every exposed port on the same host port
// of 127.0.0.1 unless --no-publish, --publish replacing a default of the
// same guest port. Unusual spellings, and default ports an unprivileged
// user cannot bind, are reported on the progress writer.
func (c *conversion) forwards() ([]plan.Port, []plan.Forward, error) {
	exposed, warnings, err := bootcfg.Exposed(c.img.Config.Config)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range warnings {
		c.o.progress("warning: %s", w)
	}
	defaults := exposed
	if c.o.NoPublish {
		defaults = nil
	}
	fs, err := bootcfg.Forwards(nil, defaults, c.o.Publish)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range fs {
		if f.HostPort < privilegedPorts && !published(c.o.Publish, f) {
			c.o.progress("warning: exposed port %d/%s is published on host port %d, which only root may bind by default (net.ipv4.ip_unprivileged_port_start); use --publish HOST:%d or --no-publish",
				f.GuestPort, f.Proto, f.HostPort, f.GuestPort)
		}
	}
	if len(fs) > 0 {
		c.o.progress("ports: publishing %v", fs)
	}
	return exposed, fs, nil
}

// privilegedPorts: host ports below this need CAP_NET_BIND_SERVICE unless
// the sysctl net.ipv4.ip_unprivileged_port_start is lowered (ip-sysctl.rst).
const privilegedPorts = 1024

func published(fs []plan.Forward, f plan.Forward) bool {
	for _, g := range fs {
		if g == f {
			return true
		}
	}
	return false
}
