package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
)

// SubmitOptions choose how a change reaches the environments repo.
type SubmitOptions struct {
	// Mode overrides offshoot.yaml's review section ("direct" or "pr").
	Mode string
	// Reviewer opens pull requests; required when the mode is pr.
	Reviewer Reviewer
	// AutoMerge overrides review.autoMerge when true.
	AutoMerge bool
}

// Result is what Submit did, in either mode.
type Result struct {
	Mode   string
	Plan   *generator.Plan
	Direct *Outcome       // mode direct
	Review *ReviewOutcome // mode pr
	Config *generator.Config
}

// Changed reports whether anything was written.
func (r *Result) Changed() bool {
	if r.Direct != nil {
		return r.Direct.Changed
	}
	return r.Review != nil && (r.Review.Pushed || r.Review.Created || r.Review.Changed || r.Review.Closed)
}

// Submit applies a request directly or proposes it as a pull request,
// as --mode or offshoot.yaml's review section says for the branch.
func (e *Engine) Submit(ctx context.Context, req generator.Request, o SubmitOptions) (*Result, error) {
	mode := o.Mode
	if mode == "" {
		// Only offshoot.yaml knows; with --mode given, no extra fetch.
		files, _, err := e.Repo.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		cfg, err := generator.LoadConfig(files)
		if err != nil {
			return nil, err
		}
		mode = cfg.ReviewMode(req.Branch)
	}
	res := &Result{Mode: mode}
	switch mode {
	case generator.ModeDirect:
		out, err := e.Apply(ctx, req)
		if err != nil {
			return nil, err
		}
		res.Direct, res.Plan = out, out.Plan
	case generator.ModePR:
		if o.Reviewer == nil {
			return nil, &generator.UsageError{Msg: "pull-request mode needs GitHub: set GITHUB_TOKEN (or a GitHub App) and, if the environments repo's URL is not on github.com, --github-repo OWNER/NAME"}
		}
		out, err := e.Propose(ctx, o.Reviewer, req, o.AutoMerge)
		if err != nil {
			return nil, err
		}
		res.Review, res.Plan = out, out.Plan
	default:
		return nil, &generator.UsageError{Msg: fmt.Sprintf("invalid mode %q: want direct or pr", mode)}
	}
	return res, nil
}

// Reporter reports an environment back on the app repository: a commit
// status on the app commit, and one comment on the branch's pull request.
type Reporter interface {
	SetStatus(ctx context.Context, sha, context, state, description, targetURL string) error
	// UpsertBranchComment edits offshoot's comment (found by marker) on the
	// open pull request of branch, or creates it; no PR → nothing.
	UpsertBranchComment(ctx context.Context, branch, marker, body string) error
}

// ReportInput is what is reported.
type ReportInput struct {
	Result    *Result
	Err       error  // the failure to report, if the submit failed
	Branch    string // raw branch (for failures, when there is no plan)
	SHA       string
	CommitURL string // link to the environments repo commit (direct mode)
	ArgoCDURL string // Argo CD UI base URL, for the Application link
	Lineage   string // "main → staging → feature_1"
}

// StatusContext is the commit status context of an environment.
func StatusContext(env string) string { return "offshoot/" + env }

// Report sets the commit status and upserts the PR comment.
func Report(ctx context.Context, rp Reporter, in ReportInput) error {
	if in.SHA == "" {
		return nil // nothing to attach a status to (delete, refresh)
	}
	name, _ := generator.EnvName(in.Branch)
	if in.Err != nil {
		return rp.SetStatus(ctx, in.SHA, StatusContext(name), "failure", "offshoot: "+in.Err.Error(), "")
	}
	p := in.Result.Plan
	env := p.Env
	appURL := ""
	if in.ArgoCDURL != "" {
		appURL = strings.TrimRight(in.ArgoCDURL, "/") + "/applications/argocd/" + env.Namespace
	}
	desc := "environment committed"
	switch {
	case in.Result.Review != nil && in.Result.Review.PR != nil:
		desc = fmt.Sprintf("PR #%d opened for review", in.Result.Review.PR.Number)
	case p.UpToDate:
		desc = "environment up to date"
	}
	if err := rp.SetStatus(ctx, in.SHA, StatusContext(env.Name), "success", desc, appURL); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### offshoot environment `%s`\n\n", env.Name)
	fmt.Fprintf(&b, "- Preview: %s\n", env.URL)
	if appURL != "" {
		fmt.Fprintf(&b, "- Argo CD: %s\n", appURL)
	}
	if r := in.Result.Review; r != nil && r.PR != nil {
		fmt.Fprintf(&b, "- Environments repo: pull request [#%d](%s)\n", r.PR.Number, r.PR.URL)
	} else if in.CommitURL != "" {
		fmt.Fprintf(&b, "- Environments repo: %s\n", in.CommitURL)
	}
	fmt.Fprintf(&b, "- Commit: `%s`\n", env.SHA)
	if in.Lineage != "" {
		fmt.Fprintf(&b, "- Database lineage: %s", in.Lineage)
		if src := env.Database.Source; src != nil && src.TargetTime != nil {
			fmt.Fprintf(&b, " (as of %s)", src.TargetTime.Format(time.RFC3339))
		}
		b.WriteString("\n")
	}
	return rp.UpsertBranchComment(ctx, in.Branch, "env:"+env.Name, b.String())
}
