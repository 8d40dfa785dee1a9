package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/image"
)

// usageError is a command-line mistake: exit status 2, like flag's.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// exactly checks a command's argument count before it runs: a wrong count
// is a usage error naming what was wanted (what, e.g. "IMAGE").
func exactly(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == n:
			return nil
		case n == 0:
			return usagef("%s takes no arguments, got %q", cmd.Name(), args)
		}
		return usagef("%s takes exactly one %s, got %d", cmd.Name(), what, len(args))
	}
}

// goFlagForms rewrites the spellings Go's flag package accepted, which
// c2vm parsed its flags with before pflag, into pflag's, so that scripts
// written then keep working: a long name after one dash (-platform X,
// -json, -no-kernel=true) becomes --platform..., and a shorthand after two
// (--o DIR, --q, --p, --P, --v: flag names then) becomes -o... pflag would
// read -platform as the shorthands -p -l -a..., so a long name wins over
// a cluster of shorthands. A flag's value and everything after "--" (run's
// command) are left alone.
func goFlagForms(fs *pflag.FlagSet, args []string) []string {
	out := append([]string{}, args...)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		body := strings.TrimPrefix(a[1:], "-")
		name, _, inline := strings.Cut(body, "=")
		f, dashes := flagNamed(fs, name)
		takesNext := false
		switch {
		case f != nil:
			out[i] = dashes + body
			takesNext = !inline && f.NoOptDefVal == ""
		case a[1] != '-':
			takesNext = clusterEndsWithValueFlag(fs, body)
		}
		if takesNext {
			i++ // the flag's value, whatever it looks like
		}
	}
	return out
}

// flagNamed finds a flag by its long name, or its shorthand when name has
// one letter, and gives the dashes pflag wants before it.
func flagNamed(fs *pflag.FlagSet, name string) (*pflag.Flag, string) {
	switch {
	case len(name) == 1:
		return fs.ShorthandLookup(name), "-"
	case len(name) > 1:
		return fs.Lookup(name), "--"
	}
	return nil, ""
}

// clusterEndsWithValueFlag reports whether a cluster of shorthands (-qo)
// ends with one that takes the next argument as its value.
func clusterEndsWithValueFlag(fs *pflag.FlagSet, cluster string) bool {
	for i := 0; i < len(cluster); i++ {
		f := fs.ShorthandLookup(cluster[i : i+1])
		if f == nil {
			return false
		}
		if f.NoOptDefVal == "" {
			return i == len(cluster)-1
		}
	}
	return false
}

// registryFlags are the image-selection flags convert and inspect share.
// --platform stays a plain string: convert reads "all" and comma lists.
func registryFlags(fs *pflag.FlagSet, platform, creds *string, insecure *bool, stall *time.Duration) {
	fs.StringVar(platform, "platform", "", "image platform os/arch[/variant] (default: the image's only one, else the host's)")
	fs.Func("creds", "`USER:PASSWORD` for a docker:// registry (default: as skopeo and Docker find them: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json)", func(v string) error {
		if user, _, ok := strings.Cut(v, ":"); !ok || user == "" {
			return errors.New("want USER:PASSWORD")
		}
		*creds = v
		return nil
	})
	fs.Var(tlsVerify{insecure}, "tls-verify", "verify a docker:// registry's TLS certificate and require HTTPS; =false for a plain-HTTP or self-signed one (loopback may be plain HTTP)")
	// Bare --tls-verify means true, as skopeo's; a separate "false" would
	// be an argument, as it was with Go's flag.
	fs.Lookup("tls-verify").NoOptDefVal = "true"
	fs.DurationVar(stall, "stall-timeout", 0, fmt.Sprintf("fail a docker:// transfer that makes no progress for this long, naming the blob (default %s)", image.DefaultStallTimeout))
}

// completeRegistryFlags offers values for registryFlags in a shell:
// linux/ARCH for each architecture c2vm knows, and more (convert's "all").
func completeRegistryFlags(cmd *cobra.Command, more ...string) {
	ps := more
	for _, n := range arch.Names() {
		ps = append(ps, "linux/"+n)
	}
	complete(cmd, "platform", ps...)
	cmd.RegisterFlagCompletionFunc("creds", cobra.NoFileCompletions)
}

// complete offers a flag's fixed values in a shell, and no file names.
func complete(cmd *cobra.Command, flag string, values ...string) {
	cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// hasJSONFlag finds --json among arguments that did not parse, so even a
// command-line mistake is reported as JSON when it was asked for.
func hasJSONFlag(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "-json" || a == "--json=true" || a == "-json=true" {
			return true
		}
	}
	return false
}

// tlsVerify is skopeo's --tls-verify[=BOOL], stored inverted so that the
// option's zero value is the default.
type tlsVerify struct{ insecure *bool }

// Type is "bool" so that help shows it as a switch, as skopeo's.
func (t tlsVerify) Type() string { return "bool" }

func (t tlsVerify) String() string {
	if t.insecure == nil || !*t.insecure {
		return "true"
	}
	return "false"
}

func (t tlsVerify) Set(v string) error {
	b, err := strconv.ParseBool(v)
	*t.insecure = !b
	return err
}
