package cli

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/c2vm/c2vm/provenance"
	"github.com/c2vm/c2vm/vmdir"
)

func (a *app) verifyCmd() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "verify [--key PUB.pem] DIR",
		Short: "check a VM directory: every artifact against manifest.json and the provenance, and the provenance's signature",
		Long: `verify reads DIR's manifest.json and checks every artifact it lists, byte for
byte (the disk image and data disks too: they are what was built only until
the VM first runs), then the provenance: with --key, that it is a DSSE
envelope signed by that key (PKIX PEM, ed25519 or ECDSA P-256); its
subjects against the files, and that it names every artifact and
manifest.json. Each failure is one line naming the file; the status is 1
when there is any.`,
		Args: exactly(1, "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.verify(args[0], key)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "public key (PEM) the provenance must be signed by")
	cmd.MarkFlagDirname("DIR")
	return cmd
}

func (a *app) verify(dir, keyFile string) error {
	var pub crypto.PublicKey
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return fmt.Errorf("--key: %w", err)
		}
		if pub, err = provenance.ParsePublicKey(b); err != nil {
			return fmt.Errorf("--key %s: %w", keyFile, err)
		}
	}
	v := &verifier{dir: dir, pub: pub, sums: map[string]string{}, failed: map[string]bool{}}
	ok := v.run()
	for _, f := range v.failures {
		fmt.Fprintf(a.stderr, "c2vm: verify: %s\n", f)
	}
	if !ok {
		return &ExitError{Code: 1}
	}
	fmt.Fprintln(a.stdout, v.summary)
	return nil
}

// verifier checks one directory, hashing each file once.
type verifier struct {
	dir      string
	pub      crypto.PublicKey
	m        *vmdir.Manifest
	sums     map[string]string // file name → sha256, or "" when unreadable
	failed   map[string]bool   // files already reported
	failures []string
	summary  string
}

func (v *verifier) fail(name, format string, a ...any) {
	if !v.failed[name] {
		v.failed[name] = true
		v.failures = append(v.failures, filepath.Join(v.dir, name)+": "+fmt.Sprintf(format, a...))
	}
}

// sum is the sha256 of the file name in the directory, "" (reported) when
// it cannot be read.
func (v *verifier) sum(name string) string {
	if s, ok := v.sums[name]; ok {
		return s
	}
	if !vmdir.IsPlainName(name) {
		v.fail(name, "not a file name of the directory")
		v.sums[name] = ""
		return ""
	}
	a, err := vmdir.DigestFile(filepath.Join(v.dir, name))
	if err != nil {
		v.fail(name, "%v", unwrapPath(err))
	}
	v.sums[name] = a.SHA256
	return a.SHA256
}

func (v *verifier) run() bool {
	m, err := vmdir.ReadManifest(v.dir)
	if err != nil {
		// A damaged manifest.json is a failure like any file's.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		v.fail(vmdir.ManifestFile, "%v", err)
		return false
	}
	v.m = m
	for _, name := range slices.Sorted(maps.Keys(m.Artifacts)) {
		if s := v.sum(name); s != "" && s != m.Artifacts[name].SHA256 {
			v.fail(name, "sha256 %s, %s says %s", s, vmdir.ManifestFile, m.Artifacts[name].SHA256)
		}
	}
	signer := v.checkProvenance()
	v.summary = fmt.Sprintf("%s: %d artifacts match %s", v.dir, len(m.Artifacts), vmdir.ManifestFile)
	if m.Provenance != "" {
		v.summary += " and " + m.Provenance + signer
	}
	return len(v.failures) == 0
}

// checkProvenance checks the provenance's signature (with a key) and its
// subjects; it returns what the summary says of the signer.
func (v *verifier) checkProvenance() string {
	name := v.m.Provenance
	if name == "" {
		if v.pub != nil {
			v.fail(vmdir.ManifestFile, "names no provenance, and --key asks for a signed one")
		}
		return ""
	}
	b, err := os.ReadFile(filepath.Join(v.dir, name))
	if err != nil {
		v.fail(name, "%v", unwrapPath(err))
		return ""
	}
	st, signer, err := v.statement(name, b)
	if err != nil {
		v.fail(name, "%v", err)
		return ""
	}
	v.checkSubjects(name, st)
	return signer
}

// statement reads the provenance file, checking the signature with a key.
func (v *verifier) statement(name string, b []byte) (*provenance.Statement, string, error) {
	if name != vmdir.SignedProvenance {
		if v.pub != nil {
			return nil, "", fmt.Errorf("not signed (a plain in-toto statement), and --key asks for a signature")
		}
		st, err := provenance.ParseStatement(b)
		return st, " (unsigned)", err
	}
	var env provenance.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, "", fmt.Errorf("not a DSSE envelope: %w", err)
	}
	if v.pub == nil {
		st, err := env.Statement()
		return st, " (signature not checked: no --key)", err
	}
	st, err := env.Verify(v.pub)
	if err != nil {
		id, _ := provenance.KeyID(v.pub)
		return nil, "", fmt.Errorf("%w with the key %s", err, id[:16])
	}
	id, _ := provenance.KeyID(v.pub)
	return st, ", signed by key " + id[:16], nil
}

// checkSubjects compares the subjects with the files, and requires every
// artifact and manifest.json among them.
func (v *verifier) checkSubjects(name string, st *provenance.Statement) {
	seen := map[string]bool{}
	for _, s := range st.Subject {
		seen[s.Name] = true
		if got := v.sum(s.Name); got != "" && got != s.Digest["sha256"] {
			v.fail(s.Name, "sha256 %s, the provenance's subject says %s", got, s.Digest["sha256"])
		}
	}
	for _, a := range append(slices.Sorted(maps.Keys(v.m.Artifacts)), vmdir.ManifestFile) {
		if !seen[a] {
			v.fail(a, "not a subject of %s", name)
		}
	}
}

// unwrapPath drops the path an *fs.PathError repeats (the line names the
// file already).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
