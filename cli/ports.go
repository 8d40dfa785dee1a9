package cli

import (
	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/vmconfig"
)

// publishUsage is the help text of --publish and -p.
const publishUsage = "publish a guest port on the host: [IP:]HOST:GUEST[/tcp|udp], IP default 127.0.0.1 (repeatable)"

// parseForwards reads the -p/--publish values after flag parsing (not in
// the flag.Value, whose error flag would follow with the whole usage):
// a malformed one is a one-line usage error.
func parseForwards(specs []string) ([]plan.Forward, error) {
	var out []plan.Forward
	for _, s := range specs {
		f, err := plan.ParseForward(s)
		if err != nil {
			return nil, usagef("--publish: %v", err)
		}
		out = append(out, f)
	}
	if err := vmconfig.CheckForwards(out); err != nil {
		return nil, usagef("--publish: %v", err)
	}
	return out, nil
}
