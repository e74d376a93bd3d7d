package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/generator"
)

// listItem is the stable, documented shape of `offshoot list -o json|yaml`.
type listItem struct {
	Branch     string `json:"branch"`
	Name       string `json:"name"`
	Parent     string `json:"parent"`
	SHA        string `json:"sha"`
	Path       string `json:"path"`
	Namespace  string `json:"namespace"`
	URL        string `json:"url"`
	Protected  bool   `json:"protected"`
	Cluster    string `json:"cluster"`
	ServerName string `json:"serverName"`
	ClonedFrom string `json:"clonedFrom"`
	CreatedAt  string `json:"createdAt"`
}

type listOptions struct {
	f      *factory
	output string
}

func newListCmd(f *factory) *cobra.Command {
	o := &listOptions{f: f}
	cmd := &cobra.Command{
		Use:   "list [-o table|json|yaml]",
		Short: "List the environments",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch o.output {
			case "table", "json", "yaml":
			default:
				return &flagError{fmt.Errorf("invalid --output %q: want table, json or yaml", o.output)}
			}
			return runList(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

func runList(ctx context.Context, o *listOptions) error {
	eng, err := o.f.Engine(ctx)
	if err != nil {
		return err
	}
	envs, err := eng.List(ctx)
	if err != nil {
		return err
	}
	items := make([]listItem, 0, len(envs))
	for _, e := range envs {
		it := listItem{
			Branch: e.Branch, Name: e.Name, Parent: e.Parent, SHA: e.SHA, Path: generator.EnvDir(e.Name),
			Namespace: e.Namespace, URL: e.URL, Protected: e.Protected, Cluster: e.Database.Cluster,
			ServerName: e.Database.ServerName, CreatedAt: e.CreatedAt.Format("2006-01-02T15:04:05Z07:00"),
		}
		if s := e.Database.Source; s != nil {
			it.ClonedFrom = s.ServerName
		}
		items = append(items, it)
	}
	switch o.output {
	case "json":
		enc := json.NewEncoder(o.f.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	case "yaml":
		b, err := yaml.Marshal(items)
		if err != nil {
			return err
		}
		_, err = o.f.Out.Write(b)
		return err
	}
	tw := tabwriter.NewWriter(o.f.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BRANCH\tPARENT\tSHA\tNAMESPACE\tURL\tDATABASE")
	for _, it := range items {
		parent := it.Parent
		if parent == "" {
			parent = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.Branch, parent, short(it.SHA), it.Namespace, it.URL, it.Cluster)
	}
	return tw.Flush()
}

func newTreeCmd(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:   "tree",
		Short: "Show the lineage of the environments (whose database each was cloned from)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			eng, err := f.Engine(cmd.Context())
			if err != nil {
				return err
			}
			envs, err := eng.List(cmd.Context())
			if err != nil {
				return err
			}
			if len(envs) == 0 {
				fmt.Fprintln(f.Out, "no environments")
				return nil
			}
			for _, l := range generator.TreeLines(envs, func(e *generator.Environment) string {
				return fmt.Sprintf("%s  [%s %s]", e.Branch, e.Database.Cluster, short(e.SHA))
			}) {
				fmt.Fprintln(f.Out, l)
			}
			return nil
		},
	}
}

func newRenderCmd(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:   "render BRANCH",
		Short: "Print a branch's environment fully built, as Argo CD will apply it",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := generator.ValidateBranch(a[0]); err != nil {
				return err
			}
			eng, err := f.Engine(cmd.Context())
			if err != nil {
				return err
			}
			out, err := eng.Render(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			_, err = f.Out.Write(out)
			return err
		},
	}
}
