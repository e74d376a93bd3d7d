package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/sergi/go-diff/diffmatchpatch"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/gitrepo"
)

// PullRequest is a pull request in the environments repo, as the engine
// needs to know it.
type PullRequest struct {
	Number int
	URL    string
}

// PRRequest is the pull request to open or update for a review branch.
type PRRequest struct {
	Head, Base, Title, Body string
	Labels                  []string
	AutoMerge               bool
}

// Reviewer is the code host's pull requests (GitHub), behind our own types.
type Reviewer interface {
	// OpenPR returns the open pull request whose head is branch, or nil.
	OpenPR(ctx context.Context, head string) (*PullRequest, error)
	// UpsertPR opens the pull request or updates the open one of the same
	// head; it writes nothing when title, body and labels are already so.
	UpsertPR(ctx context.Context, pr PRRequest) (p *PullRequest, created, changed bool, err error)
	// ClosePR closes a pull request without merging it.
	ClosePR(ctx context.Context, number int) error
}

// ReviewRepo is what pull-request mode needs of the environments repo.
type ReviewRepo interface {
	Repo
	SnapshotBranch(ctx context.Context, branch string) (fs.FS, string, bool, error)
	Propose(ctx context.Context, branch string, fn gitrepo.ChangeFunc) (gitrepo.ReviewResult, error)
	DeleteBranch(ctx context.Context, branch string) error
	Branch() string
}

// ReviewOutcome is what pull-request mode did.
type ReviewOutcome struct {
	Plan    *generator.Plan
	Branch  string       // the review branch
	PR      *PullRequest // nil when no pull request is (or remains) open
	Created bool         // the pull request was opened now
	Pushed  bool         // the review branch got a new commit
	Changed bool         // the pull request's title/body/labels were edited
	Closed  bool         // an open creation PR was closed (branch deleted before merge)
}

// ReviewBranch is the branch proposing changes to an environment.
func ReviewBranch(env string) string { return "offshoot/" + env }

// MaxDiff bounds the rendered diff in a pull request body.
const MaxDiff = 60000

// Propose does in pull-request mode what Apply does directly: the change
// goes to the review branch offshoot/<env> as one commit on top of the
// environments repo's branch, and one pull request per environment
// proposes it. A new SHA updates the same pull request; the same event
// twice pushes nothing and writes nothing. Deleting a branch whose
// creation PR is still open closes that PR and deletes its branch; deleting
// one whose environment is merged proposes its removal.
//
// autoMerge (or offshoot.yaml's review.autoMerge) asks for the pull
// request to be merged once GitHub allows it.
func (e *Engine) Propose(ctx context.Context, rv Reviewer, req generator.Request, autoMerge bool) (*ReviewOutcome, error) {
	repo, ok := e.Repo.(ReviewRepo)
	if !ok {
		return nil, errors.New("pull-request mode needs a remote environments repo")
	}
	if req.Now.IsZero() {
		req.Now = e.now()
	}
	name, err := generator.EnvName(req.Branch)
	if err != nil {
		return nil, err
	}
	branch := ReviewBranch(name)
	mainFS, _, err := repo.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := generator.LoadConfig(mainFS)
	if err != nil {
		return nil, err
	}
	pr, err := rv.OpenPR(ctx, branch)
	if err != nil {
		return nil, err
	}
	dir := generator.EnvDir(name)
	_, inMainErr := generator.ReadEnv(mainFS, name)
	inMain := inMainErr == nil
	// While a pull request is open, the environment is what it proposes
	// (so an unmerged creation keeps its database incarnation).
	view := fs.FS(mainFS)
	if pr != nil {
		bfs, _, found, err := repo.SnapshotBranch(ctx, branch)
		if err != nil {
			return nil, err
		}
		if found {
			files, err := readDir(bfs, dir)
			if err != nil {
				return nil, err
			}
			ov := &generator.Overlay{Base: mainFS}
			ov.Apply(map[string]map[string][]byte{dir: files})
			view = ov
		}
	}
	// A parent whose own creation is still under review is read from its
	// review branch, so a whole chain can be proposed before any merge.
	var dependsOn []*PullRequest
	if req.Op == generator.OpSync && !inMain && req.Parent != "" {
		if view, dependsOn, err = e.withUnmergedAncestors(ctx, repo, rv, view, req.Parent); err != nil {
			return nil, err
		}
	}
	out := &ReviewOutcome{Branch: branch}
	if req.Op == generator.OpDelete && !inMain {
		if cfg.IsProtected(req.Branch) {
			return nil, &generator.UsageError{Msg: fmt.Sprintf("branch %q is protected: its environment is never deleted by offshoot", req.Branch)}
		}
		out.Plan = &generator.Plan{Op: generator.OpDelete, UpToDate: pr == nil, Env: &generator.Environment{Branch: req.Branch, Name: name}}
		if pr != nil {
			if err := rv.ClosePR(ctx, pr.Number); err != nil {
				return nil, err
			}
			if err := repo.DeleteBranch(ctx, branch); err != nil {
				return nil, err
			}
			out.PR, out.Closed = pr, true
		}
		return out, nil
	}
	req.WantBuilt = true // the pull request shows the kustomize output
	plan, err := generator.Make(cfg, view, req)
	if err != nil {
		return nil, err
	}
	out.Plan = plan
	if plan.UpToDate && pr == nil {
		return out, nil // the environments repo already holds exactly this
	}
	if !plan.UpToDate {
		rr, err := repo.Propose(ctx, branch, func(fs.FS) (*gitrepo.Change, error) {
			return &gitrepo.Change{Message: plan.Message, Dirs: plan.Dirs}, nil
		})
		if err != nil {
			return nil, err
		}
		out.Pushed = rr.Changed
		if rr.Commit == "" {
			// The proposal equals the branch head: nothing left to review.
			if pr != nil {
				if err := rv.ClosePR(ctx, pr.Number); err != nil {
					return nil, err
				}
				out.Closed = true
			}
			return out, nil
		}
	}
	before := []byte(nil)
	if inMain {
		if b, _, err := generator.Build(mainFS, dir, nil); err == nil {
			before = b
		}
	}
	after := plan.Built
	if plan.UpToDate {
		// Unchanged while its PR is open: the PR shows what the view holds.
		if after, _, err = generator.Build(view, dir, nil); err != nil {
			return nil, err
		}
	}
	title, body := prText(plan, inMain, before, after)
	for _, d := range dependsOn {
		body = fmt.Sprintf("Depends on #%d (the parent environment's pull request): merge it first.\n\n", d.Number) + body
	}
	p, created, changed, err := rv.UpsertPR(ctx, PRRequest{
		Head: branch, Base: repo.Branch(), Title: title, Body: body,
		Labels: []string{"offshoot", "env:" + plan.Env.Name}, AutoMerge: autoMerge || cfg.Review.AutoMerge,
	})
	if err != nil {
		return nil, err
	}
	out.PR, out.Created, out.Changed = p, created, changed
	return out, nil
}

// withUnmergedAncestors overlays, for each ancestor missing from the
// environments repo's branch, the environment its open review branch
// proposes, and returns those pull requests.
func (e *Engine) withUnmergedAncestors(ctx context.Context, repo ReviewRepo, rv Reviewer, view fs.FS, parent string) (fs.FS, []*PullRequest, error) {
	var deps []*PullRequest
	var ov *generator.Overlay
	for depth := 0; parent != "" && depth < 64; depth++ {
		name, err := generator.EnvName(parent)
		if err != nil {
			return nil, nil, err
		}
		if _, err := generator.ReadEnv(view, name); err == nil {
			break // merged (or already overlaid): the rest of the chain is in place
		}
		pr, err := rv.OpenPR(ctx, ReviewBranch(name))
		if err != nil || pr == nil {
			return view, deps, err
		}
		bfs, _, found, err := repo.SnapshotBranch(ctx, ReviewBranch(name))
		if err != nil || !found {
			return view, deps, err
		}
		files, err := readDir(bfs, generator.EnvDir(name))
		if err != nil {
			return nil, nil, err
		}
		if ov == nil {
			ov = &generator.Overlay{Base: view}
			view = ov
		}
		ov.Apply(map[string]map[string][]byte{generator.EnvDir(name): files})
		deps = append(deps, pr)
		env, err := generator.ReadEnv(view, name)
		if err != nil {
			return nil, nil, err
		}
		parent = env.Parent
	}
	return view, deps, nil
}

func readDir(fsys fs.FS, dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		files[strings.TrimPrefix(p, dir+"/")] = b
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return files, err
}

// prText is the pull request's title and body: what happens, where the
// data comes from, and the rendered diff.
func prText(p *generator.Plan, inMain bool, before, after []byte) (string, string) {
	env := p.Env
	var title string
	switch {
	case p.Op == generator.OpDelete:
		title = fmt.Sprintf("offshoot: delete environment %s", env.Branch)
	case p.Op == generator.OpRefresh:
		title = fmt.Sprintf("offshoot: refresh %s's database from %s", env.Branch, env.Parent)
	case !inMain:
		title = fmt.Sprintf("offshoot: create environment %s", env.Branch)
	default:
		title = fmt.Sprintf("offshoot: deploy %s to %s", shortSHA(env.SHA), env.Branch)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| Branch | `%s` |\n", mdCode(env.Branch))
	if env.Parent != "" {
		fmt.Fprintf(&b, "| Parent | `%s` |\n", mdCode(env.Parent))
	}
	if p.Op != generator.OpDelete {
		fmt.Fprintf(&b, "| Commit | `%s` |\n", mdCode(env.SHA))
		fmt.Fprintf(&b, "| Preview | %s |\n", env.URL)
		fmt.Fprintf(&b, "| Namespace | `%s` |\n", env.Namespace)
		db := env.Database
		if src := db.Source; src != nil {
			pit := "its latest backup"
			if src.TargetTime != nil {
				pit = src.TargetTime.Format(time.RFC3339)
			}
			fmt.Fprintf(&b, "| Database | `%s`, cloned from `%s` (archive `%s`, %s) |\n", db.Cluster, mdCode(src.Branch), src.ServerName, pit)
		} else {
			fmt.Fprintf(&b, "| Database | `%s`, fresh (initdb) |\n", db.Cluster)
		}
		fmt.Fprintf(&b, "| Archives to | `%s` |\n", db.ServerName)
	} else {
		fmt.Fprintf(&b, "\nRemoves `%s` and its database `%s` (archive `%s`). The parent's data is untouched.\n",
			generator.EnvDir(env.Name), env.Database.Cluster, env.Database.ServerName)
	}
	d := unifiedDiff(string(before), string(after))
	if d == "" {
		d = "(no change to the built manifests)"
	}
	if len(d) > MaxDiff {
		d = d[:MaxDiff] + fmt.Sprintf("\n… diff truncated: %d more bytes; run `offshoot render %s` to see everything.\n", len(d)-MaxDiff, env.Branch)
	}
	fence := "```"
	for strings.Contains(d, fence) {
		fence += "`"
	}
	fmt.Fprintf(&b, "\n<details><summary>Rendered manifests (kustomize build), before → after</summary>\n\n%sdiff\n%s\n%s\n\n</details>\n", fence, d, fence)
	fmt.Fprintf(&b, "\n<sub>Proposed by offshoot; merge to apply. Pushing the branch again updates this pull request.</sub>\n")
	return title, b.String()
}

func mdCode(s string) string { return strings.ReplaceAll(s, "`", "'") }

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// unifiedDiff is a line diff of a and b with three lines of context.
func unifiedDiff(a, b string) string {
	if a == b {
		return ""
	}
	dmp := diffmatchpatch.New()
	ca, cb, lines := dmp.DiffLinesToChars(a, b)
	diffs := dmp.DiffCharsToLines(dmp.DiffMain(ca, cb, false), lines)
	type line struct {
		op   diffmatchpatch.Operation
		text string
	}
	var all []line
	for _, d := range diffs {
		for _, l := range strings.SplitAfter(d.Text, "\n") {
			if l != "" {
				all = append(all, line{d.Type, strings.TrimSuffix(l, "\n")})
			}
		}
	}
	keep := make([]bool, len(all))
	for i, l := range all {
		if l.op != diffmatchpatch.DiffEqual {
			for j := max(0, i-3); j <= min(len(all)-1, i+3); j++ {
				keep[j] = true
			}
		}
	}
	var out strings.Builder
	gap := false
	for i, l := range all {
		if !keep[i] {
			gap = true
			continue
		}
		if gap || (i == 0 && l.op == diffmatchpatch.DiffEqual) {
			out.WriteString("@@\n")
			gap = false
		}
		switch l.op {
		case diffmatchpatch.DiffInsert:
			out.WriteString("+" + l.text + "\n")
		case diffmatchpatch.DiffDelete:
			out.WriteString("-" + l.text + "\n")
		default:
			out.WriteString(" " + l.text + "\n")
		}
	}
	return out.String()
}
