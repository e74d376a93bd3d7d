package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/engine"
)

type changeOptions struct {
	f      *factory
	op     generator.Op
	branch string
	parent string
	sha    string
	at     string
}

func newSyncCmd(f *factory) *cobra.Command {
	o := &changeOptions{f: f, op: generator.OpSync}
	cmd := &cobra.Command{
		Use:   "sync BRANCH --sha SHA [--parent PARENT] [--at TIME]",
		Short: "Create a branch's environment, or move it to a new commit",
		Long: `Create the environment of BRANCH, or move it to a new commit.

A new environment needs its parent (the branch it was cut from), unless it is
the root branch; without --parent, it is detected from the app repo's history
when --app-repo is given (the environment whose branch is nearest): its database is recovered from the parent's archive (its
latest backup, or the point in time --at), and archives under a new
serverName of its own. An existing environment only changes its image tag.
Running it twice with the same SHA commits nothing.`,
		Example: `  offshoot sync main --sha 1a2b3c4
  offshoot sync feature_1 --parent staging --sha 7a8b9c0
  offshoot sync feature_2 --parent main --sha 9f8e7d6 --at 2026-11-20T10:00:00Z`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			o.branch = a[0]
			if o.sha == "" {
				return &flagError{fmt.Errorf("required flag --sha not set: the app commit to deploy")}
			}
			return runChange(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.sha, "sha", "", "app commit to deploy (required)")
	cmd.Flags().StringVar(&o.parent, "parent", "", "branch this branch was cut from (needed to create it)")
	cmd.Flags().StringVar(&o.at, "at", "", "recover the parent's data to this time (RFC 3339), when creating")
	return cmd
}

func newRefreshCmd(f *factory) *cobra.Command {
	o := &changeOptions{f: f, op: generator.OpRefresh}
	cmd := &cobra.Command{
		Use:   "refresh BRANCH [--at TIME]",
		Short: "Re-clone a branch's database from its parent's latest backup",
		Long: `Re-clone the database of BRANCH from its parent's archive: a new Cluster
(next generation) recovers from the parent's latest backup, or from the point
in time --at, and archives under a new serverName; Argo CD replaces the old one.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			o.branch = a[0]
			return runChange(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.at, "at", "", "recover to this time (RFC 3339) instead of the latest backup")
	return cmd
}

func newDeleteCmd(f *factory) *cobra.Command {
	o := &changeOptions{f: f, op: generator.OpDelete}
	return &cobra.Command{
		Use:   "delete BRANCH",
		Short: "Remove a branch's environment (never its parent's data)",
		Long: `Remove the environment of BRANCH from the environments repo; Argo CD then
deletes its Application and everything in it. Protected branches are refused.
Deleting an environment that has children is allowed (their data was already
restored) and the children still there are listed.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			o.branch = a[0]
			return runChange(cmd.Context(), o)
		},
	}
}

func runChange(ctx context.Context, o *changeOptions) error {
	req := engine.Request{Request: generator.Request{Op: o.op, Branch: o.branch, Parent: o.parent, SHA: o.sha}, Source: "cli"}
	if o.at != "" {
		t, err := time.Parse(time.RFC3339, o.at)
		if err != nil {
			return &flagError{fmt.Errorf("invalid --at %q: want RFC 3339, e.g. 2026-11-20T10:00:00Z", o.at)}
		}
		req.At = &t
	}
	eng, err := o.f.Engine(ctx)
	if err != nil {
		return err
	}
	eng.NoRetry = true
	out, err := eng.Handle(ctx, []engine.Request{req})
	if err != nil {
		return err
	}
	it := out.Items[0]
	if it.ReportErr != nil {
		fmt.Fprintf(o.f.Err, "offshoot: reporting to GitHub failed: %v\n", it.ReportErr)
	}
	if it.Err != nil {
		return it.Err
	}
	if o.parent == "" && it.Request.ParentReason != "" {
		fmt.Fprintf(o.f.Out, "%s: parent %s (%s)\n", o.branch, it.Request.Parent, it.Request.ParentReason)
	}
	if it.Review != nil {
		printReview(o.f, it.Review)
		return nil
	}
	printOutcome(o.f, it.Plan, out)
	switch {
	case out.NotifyErr != nil:
		fmt.Fprintf(o.f.Err, "offshoot: telling Argo CD about %s failed: %v\n", short(out.Commit), out.NotifyErr)
	case len(out.Notified) > 0:
		fmt.Fprintf(o.f.Out, "  asked Argo CD to refresh %s\n", strings.Join(out.Notified, ", "))
	}
	return nil
}

func printReview(f *factory, r *engine.ReviewOutcome) {
	env := r.Plan.Env
	switch {
	case r.Closed && r.PR != nil:
		fmt.Fprintf(f.Out, "%s: closed pull request #%d and deleted %s (the environment was never merged)\n", env.Branch, r.PR.Number, r.Branch)
	case r.PR == nil:
		fmt.Fprintf(f.Out, "%s: up to date (nothing to review)\n", env.Branch)
	case r.Created:
		fmt.Fprintf(f.Out, "%s: opened pull request #%d (%s) from %s\n", env.Branch, r.PR.Number, r.PR.URL, r.Branch)
	case r.Pushed || r.Changed:
		fmt.Fprintf(f.Out, "%s: updated pull request #%d (%s)\n", env.Branch, r.PR.Number, r.PR.URL)
	default:
		fmt.Fprintf(f.Out, "%s: up to date (pull request #%d)\n", env.Branch, r.PR.Number)
	}
}

func printOutcome(f *factory, p *generator.Plan, out *engine.Outcome) {
	env := p.Env
	switch {
	case p.Op == generator.OpDelete && p.Previous == nil:
		fmt.Fprintf(f.Out, "%s: no environment, nothing to delete\n", env.Branch)
		return
	case p.UpToDate || !out.Changed:
		fmt.Fprintf(f.Out, "%s: up to date (%s)\n", env.Branch, generator.EnvDir(env.Name))
		return
	}
	switch p.Op {
	case generator.OpDelete:
		fmt.Fprintf(f.Out, "%s: deleted %s (commit %s)\n", env.Branch, generator.EnvDir(env.Name), short(out.Commit))
		if len(p.Children) > 0 {
			fmt.Fprintf(f.Out, "note: environments cloned from %s remain (their data was already restored): %s\n", env.Branch, strings.Join(p.Children, ", "))
		}
		return
	case generator.OpRefresh:
		fmt.Fprintf(f.Out, "%s: database refreshed (commit %s)\n", env.Branch, short(out.Commit))
	default:
		verb := "updated"
		if p.Previous == nil {
			verb = "created"
		}
		fmt.Fprintf(f.Out, "%s: %s %s at %s (commit %s)\n", env.Branch, verb, generator.EnvDir(env.Name), env.SHA, short(out.Commit))
	}
	fmt.Fprintf(f.Out, "  namespace %s, url %s\n", env.Namespace, env.URL)
	db := env.Database
	if db.Source == nil {
		fmt.Fprintf(f.Out, "  database %s: fresh (initdb), archiving to %s\n", db.Cluster, db.ServerName)
	} else {
		pit := "latest backup"
		if db.Source.TargetTime != nil {
			pit = db.Source.TargetTime.Format(time.RFC3339)
		}
		fmt.Fprintf(f.Out, "  database %s: recovering from %s (archive %s, %s), archiving to %s\n",
			db.Cluster, db.Source.Branch, db.Source.ServerName, pit, db.ServerName)
	}
}
