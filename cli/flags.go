package cli

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// listFlag is a repeatable string flag (--env A=1 --env B=2).
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// parseInterspersed parses fs over args, allowing flags after positional
// arguments (`c2vm convert image.tar --platform linux/arm64`), as users of
// docker and skopeo expect. Everything after the first "--" is returned in
// rest, unparsed.
func parseInterspersed(fs *flag.FlagSet, args []string) (pos, rest []string, err error) {
	for i, a := range args {
		if a == "--" {
			rest = append([]string{}, args[i+1:]...)
			args = args[:i]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		if args = fs.Args(); len(args) == 0 {
			return pos, rest, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// usageError is a command-line mistake: exit status 2, like flag's.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// registryFlags are the image-selection flags convert and inspect share.
func registryFlags(fs *flag.FlagSet, platform, creds *string, insecure *bool) {
	fs.StringVar(platform, "platform", "", "image platform os/arch[/variant] (default: the image's only one, else the host's)")
	fs.Func("creds", "USER:PASSWORD for a docker:// registry (default: as skopeo and Docker find them: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json)", func(v string) error {
		if user, _, ok := strings.Cut(v, ":"); !ok || user == "" {
			return errors.New("want USER:PASSWORD")
		}
		*creds = v
		return nil
	})
	fs.Var(tlsVerify{insecure}, "tls-verify", "verify a docker:// registry's TLS certificate and require HTTPS; =false for a plain-HTTP or self-signed one (loopback may be plain HTTP) (default true)")
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

func (t tlsVerify) IsBoolFlag() bool { return true }

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

// parseOneImage parses the flags of a command that takes one IMAGE.
func parseOneImage(fs *flag.FlagSet, args []string, cmd string) (string, error) {
	pos, _, err := parseInterspersed(fs, args)
	if err == nil && len(pos) != 1 {
		err = fmt.Errorf("%s takes exactly one IMAGE, got %d", cmd, len(pos))
	}
	if err != nil {
		return "", usagef("%v", err)
	}
	return pos[0], nil
}
