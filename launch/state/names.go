package state

import (
	"fmt"
	"regexp"

	"github.com/docker/docker/pkg/namesgenerator"
)

// nameRE is Docker's rule for container names; a name is also a
// directory of the store, so it can hold no "/" and be no "..".
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// maxName keeps agent.sock's path within a unix socket's limit under
// the usual state directories.
const maxName = 64

// CheckName validates a VM name given with --name.
func CheckName(name string) error {
	if !nameRE.MatchString(name) || len(name) > maxName {
		return fmt.Errorf("invalid VM name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most %d characters", name, maxName)
	}
	return nil
}

// generateName is Docker's adjective_surname; a retry adds a digit.
var generateName = namesgenerator.GetRandomName
