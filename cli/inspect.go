package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/c2vm/c2vm/image"
)

// inspectResult is `c2vm inspect --json`'s document.
type inspectResult struct {
	Ref            string              `json:"ref"`
	ManifestDigest string              `json:"manifestDigest"`
	ConfigDigest   string              `json:"configDigest"`
	Platform       ocispec.Platform    `json:"platform"`
	Platforms      []ocispec.Platform  `json:"platforms"`
	Config         ocispec.ImageConfig `json:"config"`
	Created        string              `json:"created,omitempty"`
	Layers         []inspectLayer      `json:"layers"`
}

type inspectLayer struct {
	Digest    string `json:"digest,omitempty"`
	Size      int64  `json:"size,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
	DiffID    string `json:"diffID,omitempty"`
}

func (a *app) inspectCmd() *cobra.Command {
	var o image.Options
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect [flags] IMAGE",
		Short: "show an image's platforms and config, without converting",
		Args:  exactly(1, "IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.inspect(cmd.Context(), args[0], o, asJSON)
		},
	}
	registryFlags(cmd.Flags(), &o.Platform, &o.Creds, &o.InsecureTLS, &o.StallTimeout)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document ({\"error\": ...} on failure)")
	completeRegistryFlags(cmd)
	return cmd
}

// inspect opens the image (reading its index, manifest and config, no
// layer) and prints what it found.
func (a *app) inspect(ctx context.Context, ref string, o image.Options, asJSON bool) error {
	img, err := a.open(ctx, ref, o)
	if err != nil {
		return err
	}
	defer img.Close()
	r := inspectResult{
		Ref: img.Ref, ManifestDigest: img.ManifestDigest.String(), ConfigDigest: img.ConfigDigest.String(),
		Platform: img.Platform, Platforms: img.Platforms, Config: img.Config.Config, Layers: []inspectLayer{},
	}
	if len(r.Platforms) == 0 {
		r.Platforms = []ocispec.Platform{img.Platform}
	}
	if img.Config.Created != nil {
		r.Created = img.Config.Created.UTC().Format("2006-01-02T15:04:05Z")
	}
	for _, l := range img.Layers {
		r.Layers = append(r.Layers, inspectLayer{Digest: l.Digest.String(), Size: l.Size, MediaType: l.MediaType, DiffID: l.DiffID.String()})
	}
	if asJSON {
		return writeJSON(a.stdout, r)
	}
	return r.print(a.stdout)
}

// print writes the result for a person: one "key: value" line each.
func (r inspectResult) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	var names []string
	for _, p := range r.Platforms {
		names = append(names, platforms.Format(p))
	}
	var size int64
	for _, l := range r.Layers {
		size += l.Size
	}
	c := r.Config
	for _, kv := range [][2]string{
		{"image", r.Ref},
		{"manifest", r.ManifestDigest},
		{"config", r.ConfigDigest},
		{"platform", platforms.Format(r.Platform)},
		{"platforms", strings.Join(names, ", ")},
		{"created", r.Created},
		{"entrypoint", quoteList(c.Entrypoint)},
		{"cmd", quoteList(c.Cmd)},
		{"env", strings.Join(c.Env, " ")},
		{"user", c.User},
		{"workdir", c.WorkingDir},
		{"exposed", strings.Join(sortedSet(c.ExposedPorts), " ")},
		{"volumes", strings.Join(sortedSet(c.Volumes), " ")},
		{"stopsignal", c.StopSignal},
		{"layers", fmt.Sprintf("%d, %d bytes stored", len(r.Layers), size)},
	} {
		if kv[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
		}
	}
	return tw.Flush()
}

func quoteList(l []string) string {
	if len(l) == 0 {
		return ""
	}
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func sortedSet(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
