package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
)

// StatusContext is the commit status context of an environment.
func StatusContext(env string) string { return "offshoot/" + env }

// report sets each synced environment's commit status on the app commit
// and upserts its pull-request comment. A failed report is logged and kept
// in the item: it never fails the environment change.
func (e *Engine) report(ctx context.Context, out *Outcome) {
	if e.Reporter == nil {
		return
	}
	for i := range out.Items {
		it := &out.Items[i]
		r := it.Request
		if r.Op != generator.OpSync || r.SHA == "" || it.Skipped != "" {
			continue
		}
		var err error
		switch {
		case it.Err != nil && IsTemporary(it.Err) && !e.NoRetry:
			continue // the caller tries it again; it reports when it gives up
		case it.Err != nil:
			err = e.setFailure(ctx, r.Request, it.Err)
		default:
			err = e.reportItem(ctx, it, out.Commit)
		}
		if err != nil {
			it.ReportErr = err
			e.log().Warn("reporting to GitHub failed", "branch", r.Branch, "error", err.Error())
		}
	}
}

// ReportFailure reports that a batch failed for good on each of its syncs'
// app commits: Handle does it for an error that no retry can fix; a caller
// that gives up retrying a temporary one calls it itself.
func (e *Engine) ReportFailure(ctx context.Context, reqs []Request, cause error) {
	if e.Reporter == nil || cause == nil {
		return
	}
	for _, r := range reqs {
		if r.Op != generator.OpSync || r.SHA == "" {
			continue
		}
		if err := e.setFailure(ctx, r.Request, cause); err != nil {
			e.log().Warn("reporting to GitHub failed", "branch", r.Branch, "error", err.Error())
		}
	}
}

func (e *Engine) setFailure(ctx context.Context, r generator.Request, cause error) error {
	name, _ := generator.EnvName(r.Branch)
	return e.Reporter.SetStatus(ctx, r.SHA, StatusContext(name), "failure", "offshoot: "+cause.Error(), "")
}

// reportItem reports one environment written (or already up to date).
func (e *Engine) reportItem(ctx context.Context, it *Item, commit string) error {
	p := it.Plan
	env := p.Env
	appURL := ""
	if e.AppURL != nil {
		appURL = e.AppURL(env.Namespace)
	}
	desc := "environment committed"
	switch {
	case it.Review != nil && it.Review.PR != nil:
		desc = fmt.Sprintf("PR #%d opened for review", it.Review.PR.Number)
	case p.UpToDate:
		desc = "environment up to date"
	}
	if err := e.Reporter.SetStatus(ctx, it.Request.SHA, StatusContext(env.Name), "success", desc, appURL); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### offshoot environment `%s`\n\n", env.Name)
	fmt.Fprintf(&b, "- Preview: %s\n", env.URL)
	if appURL != "" {
		fmt.Fprintf(&b, "- Argo CD: %s\n", appURL)
	}
	switch r := it.Review; {
	case r != nil && r.PR != nil:
		fmt.Fprintf(&b, "- Environments repo: pull request [#%d](%s)\n", r.PR.Number, r.PR.URL)
	case r == nil && commit != "" && e.CommitURL != nil:
		if u := e.CommitURL(commit); u != "" {
			fmt.Fprintf(&b, "- Environments repo: %s\n", u)
		}
	}
	fmt.Fprintf(&b, "- Commit: `%s`\n", env.SHA)
	if it.Lineage != "" {
		fmt.Fprintf(&b, "- Database lineage: %s", it.Lineage)
		if src := env.Database.Source; src != nil && src.TargetTime != nil {
			fmt.Fprintf(&b, " (as of %s)", src.TargetTime.Format(time.RFC3339))
		}
		b.WriteString("\n")
	}
	return e.Reporter.UpsertBranchComment(ctx, it.Request.Branch, "env:"+env.Name, b.String())
}
