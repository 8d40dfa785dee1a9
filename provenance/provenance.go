// Package provenance writes and checks the SLSA provenance of a
// conversion: an in-toto Statement v1 (https://in-toto.io/Statement/v1)
// whose predicate is SLSA Provenance v1 (https://slsa.dev/provenance/v1),
// optionally signed into a DSSE envelope
// (https://github.com/secure-systems-lab/dsse, protocol.md) with an
// ed25519 or ECDSA P-256 key.
//
//	st := provenance.New(subjects, provenance.Build{...})
//	env, err := provenance.Sign(st, key) // or json of st, unsigned
//	st, err = env.Verify(pub)
//
// Both key types sign deterministically (ed25519 by definition, ECDSA by
// RFC 6979), so a signed output is reproducible as an unsigned one is.
package provenance

import (
	"encoding/json"
	"sort"
)

// The in-toto and SLSA type URIs.
const (
	StatementType = "https://in-toto.io/Statement/v1"
	PredicateType = "https://slsa.dev/provenance/v1"
	// BuildType names c2vm's conversion: what ExternalParameters mean.
	BuildType = "https://github.com/c2vm/c2vm/convert/v1"
	// PayloadType is DSSE's payloadType of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
)

// Statement is an in-toto Statement v1 with a SLSA v1 predicate.
type Statement struct {
	Type          string     `json:"_type"`
	Subject       []Resource `json:"subject"`
	PredicateType string     `json:"predicateType"`
	Predicate     Predicate  `json:"predicate"`
}

// Resource is an in-toto ResourceDescriptor.
type Resource struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Predicate is SLSA Provenance v1's.
type Predicate struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition says what was built from what.
type BuildDefinition struct {
	BuildType            string         `json:"buildType"`
	ExternalParameters   map[string]any `json:"externalParameters"`
	InternalParameters   map[string]any `json:"internalParameters,omitempty"`
	ResolvedDependencies []Resource     `json:"resolvedDependencies,omitempty"`
}

// RunDetails names the builder. No times are recorded: they would make
// two conversions of the same input differ.
type RunDetails struct {
	Builder Builder `json:"builder"`
}

// Builder is the tool that ran the build.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// Build is what New needs besides the subjects.
type Build struct {
	// Parameters are the conversion's options as the user gave them.
	Parameters map[string]any
	// Dependencies are the inputs: the image, the kernel, the EFI stub,
	// the guest init, c2vm itself.
	Dependencies []Resource
	Version      string // c2vm's
}

// New makes the statement over subjects (name → sha256 hex), sorted by
// name.
func New(subjects map[string]string, b Build) Statement {
	names := make([]string, 0, len(subjects))
	for n := range subjects {
		names = append(names, n)
	}
	sort.Strings(names)
	st := Statement{Type: StatementType, PredicateType: PredicateType}
	for _, n := range names {
		st.Subject = append(st.Subject, Resource{Name: n, Digest: map[string]string{"sha256": subjects[n]}})
	}
	params := b.Parameters
	if params == nil {
		params = map[string]any{}
	}
	st.Predicate = Predicate{
		BuildDefinition: BuildDefinition{BuildType: BuildType, ExternalParameters: params, ResolvedDependencies: b.Dependencies},
		RunDetails:      RunDetails{Builder: Builder{ID: BuildType, Version: map[string]string{"c2vm": b.Version}}},
	}
	return st
}

// Marshal is the statement's JSON: indented, map keys sorted, a final
// newline.
func (st Statement) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(st, "", "  ")
	return append(b, '\n'), err
}
