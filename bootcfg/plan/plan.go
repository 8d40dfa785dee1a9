// Package plan holds the boot plan (boot.json): the ordered list of steps
// the guest init executes, from mounting /proc to running the container.
// The host (package bootcfg) builds it; the init only runs it, printing
// each step as it goes (c2vm.debug=1) and the failing one when it stops.
// New features add steps, not init code.
//
//	p := &plan.Plan{Version: plan.Version, Steps: []plan.Step{
//		{Action: &plan.Mount{Source: "proc", Target: "/proc", FSType: "proc"}},
//		{Action: &plan.Run{Process: proc}},
//	}}
//	for _, s := range p.Steps {
//		fmt.Println(s) // "mount proc (proc) on /proc", "run [/bin/sh]"
//	}
//
// The package also declares what host and guest must agree on: the console
// protocol, the c2vm.* kernel arguments, Docker's default PATH and how an
// environment is overridden. It is a leaf package — standard library,
// x/sys and runtime-spec only — because the init links it into every VM.
package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Version is the boot.json format version this package reads and writes.
// Version 2 replaced version 1's fields with the list of steps.
const Version = 2

// Path is where the boot plan lives in the initramfs.
const Path = "/c2vm/boot.json"

// MaxSize bounds boot.json: the init reads it whole.
const MaxSize = 16 << 20

// Plan is boot.json.
type Plan struct {
	Version int    `json:"version"`
	Steps   []Step `json:"steps"`
}

// Step is one entry of the plan: an action and whether its failure stops
// the boot.
type Step struct {
	Action
	// Optional steps that fail are reported on the console (with
	// c2vm.debug=1) and the boot goes on: a module that binds to no
	// hardware here, an /etc the image lacks, a mount type the kernel
	// does not have.
	Optional bool
}

// Action is what a step does. Each kind is a pointer to one of this
// package's structs; the guest runs it, anyone can print it.
type Action interface {
	// Op is the step's kind in boot.json ("mount", "run", ...).
	Op() string
	fmt.Stringer
}

func (s Step) String() string {
	if s.Action == nil {
		return "(empty step)"
	}
	if s.Optional {
		return s.Action.String() + " (optional)"
	}
	return s.Action.String()
}

// actions makes an empty action of each kind, for decoding.
var actions = map[string]func() Action{}

func register(mk ...func() Action) {
	for _, f := range mk {
		actions[f().Op()] = f
	}
}

// Ops lists the step kinds, sorted.
func Ops() []string {
	var out []string
	for op := range actions {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// MarshalJSON writes a step as one flat object: {"op": "mount",
// "optional": true, ...the action's fields}.
func (s Step) MarshalJSON() ([]byte, error) {
	if s.Action == nil {
		return nil, errors.New("plan: step without an action")
	}
	body, err := json.Marshal(s.Action)
	if err != nil {
		return nil, err
	}
	head, _ := json.Marshal(struct {
		Op       string `json:"op"`
		Optional bool   `json:"optional,omitempty"`
	}{s.Op(), s.Optional})
	if bytes.Equal(body, []byte("{}")) {
		return head, nil
	}
	// head is {...}; body is {...}: join them as one object.
	return append(append(head[:len(head)-1], ','), body[1:]...), nil
}

// UnmarshalJSON reads a step written by MarshalJSON; an unknown op is an
// error naming it (an init older than the host that wrote the plan).
func (s *Step) UnmarshalJSON(b []byte) error {
	var head struct {
		Op       string `json:"op"`
		Optional bool   `json:"optional"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	mk, ok := actions[head.Op]
	if !ok {
		return fmt.Errorf("unknown step %q (this init knows %v)", head.Op, Ops())
	}
	a := mk()
	if err := json.Unmarshal(b, a); err != nil {
		return fmt.Errorf("step %s: %w", head.Op, err)
	}
	s.Action, s.Optional = a, head.Optional
	return nil
}

// Read parses boot.json, bounded by MaxSize, and checks its version.
func Read(r io.Reader) (*Plan, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("boot plan is larger than %d bytes", MaxSize)
	}
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("parsing boot plan: %w", err)
	}
	if v.Version != Version {
		return nil, fmt.Errorf("boot plan is version %d, this init reads version %d (convert again with the same c2vm)", v.Version, Version)
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("parsing boot plan: %w", err)
	}
	return &p, nil
}

// Write writes p as indented JSON with a final newline.
func (p *Plan) Write(w io.Writer) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
