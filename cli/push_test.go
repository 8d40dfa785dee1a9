package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestPushUsage: push's and pull's command-line mistakes are exit 2,
// before any work.
func TestPushUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"push", "dir"}, "push takes DIR and docker://REF, got 1 arguments"},
		{[]string{"push", "--platform", "linux/arm64", "dir", "docker://r/x"}, "push takes every platform of DIR"},
		{[]string{"push", "--kubevirt", "-", "--json", "dir", "docker://r/x"}, "--kubevirt - and --json both want stdout"},
		{[]string{"pull", "docker://r/x"}, "pull needs -o DIR"},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), tc.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
