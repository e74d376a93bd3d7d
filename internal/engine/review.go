package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sergi/go-diff/diffmatchpatch"

	"github.com/offshoot-dev/offshoot/generator"
)

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

// ReviewBranchPrefix starts every review branch's name.
const ReviewBranchPrefix = "offshoot/"

// ReviewBranch is the branch proposing changes to an environment.
func ReviewBranch(env string) string { return ReviewBranchPrefix + env }

// MaxPRBody bounds a pull request body (GitHub refuses more than 65,536
// characters); the rendered diff is cut to fit.
const MaxPRBody = 65536

// propose does in pull-request mode what a direct commit does: the change
// goes to the review branch offshoot/<env> as one commit on top of the
// environments repo's branch, and one pull request per environment
// proposes it. A new SHA updates the same pull request; the same event
// twice pushes nothing and writes nothing. Deleting a branch whose
// creation PR is still open closes that PR and deletes its branch; deleting
// one whose environment is merged proposes its removal. It reads the
// environments repo's branch from the batch's snapshot.
func (e *Engine) propose(ctx context.Context, snap *snapshot, req generator.Request) (*ReviewOutcome, error) {
	repo, rv, cfg, mainFS := e.Review, e.PRs, snap.cfg, snap.files
	name, err := generator.EnvName(req.Branch)
	if err != nil {
		return nil, err
	}
	branch := ReviewBranch(name)
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
		if view, dependsOn, err = withUnmergedAncestors(ctx, repo, rv, view, req.Parent); err != nil {
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
	plan, err := generator.PlanChecked(cfg, view, req)
	if err != nil {
		return nil, err
	}
	out.Plan = plan
	if plan.UpToDate && pr == nil {
		return out, nil // the environments repo already holds exactly this
	}
	if !plan.UpToDate {
		rr, err := repo.Propose(ctx, branch, func(fs.FS, string) (*Change, error) {
			return &Change{Message: plan.Message, Dirs: plan.Dirs}, nil
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
		if b, _, err := generator.BuildEnv(mainFS, dir, nil); err == nil {
			before = b
		}
	}
	after := plan.Built
	if plan.UpToDate {
		// Unchanged while its PR is open: the PR shows what the view holds.
		if after, _, err = generator.BuildEnv(view, dir, nil); err != nil {
			return nil, err
		}
	}
	var deps strings.Builder
	for _, d := range dependsOn {
		fmt.Fprintf(&deps, "Depends on #%d (the parent environment's pull request): merge it first.\n\n", d.Number)
	}
	title, body := prText(plan, inMain, before, after, deps.String())
	p, created, changed, err := rv.UpsertPR(ctx, PRRequest{
		Head: branch, Base: repo.Branch(), Title: title, Body: body,
		Labels: []string{"offshoot", "env:" + plan.Env.Name}, AutoMerge: e.AutoMerge || cfg.Review.AutoMerge,
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
func withUnmergedAncestors(ctx context.Context, repo ReviewRepo, rv Reviewer, view fs.FS, parent string) (fs.FS, []*PullRequest, error) {
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
func prText(p *generator.Plan, inMain bool, before, after []byte, preface string) (string, string) {
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
		title = fmt.Sprintf("offshoot: deploy %s to %s", generator.ShortSHA(env.SHA), env.Branch)
	}
	var b strings.Builder
	b.WriteString(preface)
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
	const open, closing = "\n<details><summary>Rendered manifests (kustomize build), before → after</summary>\n\n", "\n\n</details>\n"
	footer := "\n<sub>Proposed by offshoot; merge to apply. Pushing the branch again updates this pull request.</sub>\n"
	fence := "```"
	for strings.Contains(d, fence) {
		fence += "`"
	}
	// The diff gets what the rest of the body leaves of MaxPRBody.
	budget := MaxPRBody - utf8.RuneCountInString(b.String()) - len(open) - len(closing) - len(footer) - 2*len(fence) - len("diff\n\n")
	d = cutDiff(d, budget, env.Branch)
	fmt.Fprintf(&b, "%s%sdiff\n%s\n%s%s", open, fence, d, fence, closing)
	b.WriteString(footer)
	return title, b.String()
}

// cutDiff cuts a diff to at most max characters, at a line boundary, with
// a note saying how much was left out.
func cutDiff(d string, max int, branch string) string {
	if utf8.RuneCountInString(d) <= max {
		return d
	}
	note := func(rest int) string {
		return fmt.Sprintf("… diff truncated: %d more characters; run `offshoot render %s` to see everything.\n", rest, branch)
	}
	total := utf8.RuneCountInString(d)
	keep := max - utf8.RuneCountInString(note(total))
	if keep < 0 {
		keep = 0
	}
	// keep runes, then back to the last complete line.
	cut := len(d)
	n := 0
	for i := range d {
		if n == keep {
			cut = i
			break
		}
		n++
	}
	if nl := strings.LastIndexByte(d[:cut], '\n'); nl >= 0 {
		cut = nl + 1
	} else {
		cut = 0
	}
	return d[:cut] + note(total-utf8.RuneCountInString(d[:cut]))
}

func mdCode(s string) string { return strings.ReplaceAll(s, "`", "'") }

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
