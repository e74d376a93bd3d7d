package engine

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
)

// Request is one branch event, from whichever door it came in.
type Request struct {
	generator.Request
	// Source is where it came from, for logs and metrics: "cli", the
	// webhook's event ("push", "create", "delete", "pull_request") or
	// "reconcile".
	Source string
	// Delivery is the webhook delivery id, for logs.
	Delivery string
	// FromEvent: the code host says so (a webhook or reconcile), not a
	// person. A branch deleted whose environment is protected or absent is
	// then skipped (said in Item.Skipped), not refused, and an existing
	// environment keeps its recorded parent.
	FromEvent bool
}

// Item is what became of one request of a batch.
type Item struct {
	Request Request
	// Mode is how its change went: generator.ModeDirect or generator.ModePR.
	Mode string
	// Plan is what it does; nil when Skipped or Err is set.
	Plan *generator.Plan
	// Review is what pull-request mode did.
	Review *ReviewOutcome
	// Skipped says why nothing was done on purpose.
	Skipped string
	// Err: the request was refused; the others of the batch still apply.
	Err error
	// ReportErr: reporting it on the app repo failed (the change stands).
	ReportErr error
	// Lineage is "main → staging → feature_1" for the environment written.
	Lineage string
}

// Result names what happened to an item, for logs and metrics: applied,
// up_to_date, proposed, skipped or refused.
func (it *Item) Result() string {
	switch {
	case it.Err != nil:
		return "refused"
	case it.Skipped != "":
		return "skipped"
	case it.Review != nil:
		return "proposed"
	case it.Plan != nil && it.Plan.UpToDate:
		return "up_to_date"
	}
	return "applied"
}

// Outcome is what Handle did with a batch: one commit (direct mode) for
// all of its direct items, one pull request per reviewed item.
type Outcome struct {
	Items    []Item
	Commit   string
	Changed  bool
	Previous string // with Changed, the head the commit replaced
	Attempts int
	// Planning is the time spent planning, building and checking (the
	// last attempt's); the rest is writing the commit and pushing it.
	Planning time.Duration
	// Notified: Argo CD was told about the commit.
	Notified []string
	// NotifyErr is why telling Argo CD failed (the commit stands).
	NotifyErr error
}

// Pushed is the commit as Argo CD is told about it (nil when nothing changed).
func (o *Outcome) Pushed() *Pushed {
	if !o.Changed || o.Commit == "" {
		return nil
	}
	p := &Pushed{Commit: o.Commit, Previous: o.Previous}
	for _, it := range o.Items {
		if it.Err != nil || it.Review != nil || it.Plan == nil || it.Plan.UpToDate || it.Plan.Env == nil {
			continue
		}
		p.Apps = append(p.Apps, it.Plan.Env.Namespace)
		p.Paths = append(p.Paths, PlanPaths(it.Plan)...)
	}
	return p
}

// PlanPaths are the directories a plan writes or removes, sorted.
func PlanPaths(p *generator.Plan) []string {
	out := make([]string, 0, len(p.Dirs))
	for d := range p.Dirs {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// snapshot is the environments repo as one batch sees it: read once,
// offshoot.yaml parsed once.
type snapshot struct {
	files fs.FS
	head  string
	cfg   *generator.Config
	envs  []*generator.Environment // every env.yaml, read when first needed
}

func (s *snapshot) allEnvs() ([]*generator.Environment, error) {
	if s.envs == nil {
		envs, err := generator.ListEnvs(s.files)
		if err != nil {
			return nil, err
		}
		if envs == nil {
			envs = []*generator.Environment{}
		}
		s.envs = envs
	}
	return s.envs, nil
}

func (e *Engine) snapshot(ctx context.Context) (*snapshot, error) {
	files, head, err := e.Repo.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := generator.LoadConfig(files)
	if err != nil {
		return nil, err
	}
	e.cfg.p.Store(cfg)
	return &snapshot{files: files, head: head, cfg: cfg}, nil
}

// Handle applies a batch of branch events: the one path every event takes
// (the CLI is a batch of one; serve's worker and reconcile feed it). It
// reads the environments repo once, fills in missing SHAs and parents,
// routes each request to a direct commit or a pull request, plans,
// validates, commits all direct changes as one commit, reports each
// environment on the app repo and tells Argo CD.
//
// A request that is refused (bad branch name, unknown parent, protected…)
// is reported in its item and does not stop the others. An error reading
// the repo, a broken offshoot.yaml or a failed push fails the whole batch
// and nothing is committed: IsTemporary says whether trying again can help.
// A batch that fails for good is reported on the app repo here; one that
// may succeed later is the caller's to retry (or ReportFailure when it
// gives up).
func (e *Engine) Handle(ctx context.Context, reqs []Request) (*Outcome, error) {
	snap, err := e.snapshot(ctx)
	if err == nil {
		var out *Outcome
		if out, err = e.handle(ctx, snap, reqs); err == nil {
			return out, nil
		}
	}
	if e.NoRetry || !IsTemporary(err) {
		e.ReportFailure(ctx, reqs, err)
	}
	return nil, err
}

func (e *Engine) handle(ctx context.Context, snap *snapshot, reqs []Request) (*Outcome, error) {
	out := &Outcome{}
	items, err := e.prepare(ctx, snap, reqs)
	if err != nil {
		return nil, err
	}
	var direct []int
	for i := range items {
		it := &items[i]
		if it.Err != nil || it.Skipped != "" {
			continue
		}
		it.Mode = e.mode(snap.cfg, it.Request.Branch)
		switch it.Mode {
		case generator.ModeDirect:
			direct = append(direct, i)
		case generator.ModePR:
			if e.Review == nil || e.PRs == nil {
				it.Err = &generator.UsageError{Msg: "the changes of " + quote(it.Request.Branch) + " go through pull requests, which need GitHub access to a remote environments repo"}
				continue
			}
			it.Review, it.Err = e.propose(ctx, snap, it.Request.Request)
			if it.Review != nil {
				it.Plan = it.Review.Plan
			}
		default:
			it.Err = &generator.UsageError{Msg: fmt.Sprintf("invalid review mode %q: want direct or pr", it.Mode)}
		}
	}
	if len(direct) > 0 {
		if err := e.commit(ctx, snap, items, direct, out); err != nil {
			return nil, err
		}
	}
	out.Items = items
	e.lineages(snap, out)
	e.report(ctx, out)
	e.notify(ctx, out)
	return out, nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func (e *Engine) mode(cfg *generator.Config, branch string) string {
	if e.Mode != "" {
		return e.Mode
	}
	return cfg.ReviewMode(branch)
}

// prepare turns requests into items: branch names checked, missing SHAs
// looked up, skips decided, parents of new branches detected, and parents
// created in the same batch put before their children.
func (e *Engine) prepare(ctx context.Context, snap *snapshot, reqs []Request) ([]Item, error) {
	now := e.now()
	items := make([]Item, 0, len(reqs))
	exists := map[string]bool{}
	has := func(branch string) bool {
		ok, seen := exists[branch]
		if !seen {
			_, err := generator.FindEnv(snap.files, branch)
			ok = err == nil
			exists[branch] = ok
		}
		return ok
	}
	var heads map[string]string
	for _, r := range reqs {
		if r.Now.IsZero() {
			r.Now = now
		}
		if r.FromEvent {
			r.KeepParent = true
		}
		it := Item{Request: r, Err: validBranches(r.Branch, r.Parent)}
		switch {
		case it.Err != nil:
		case r.Op == generator.OpDelete && r.FromEvent && !has(r.Branch):
			it.Skipped = "no environment to delete"
		case r.Op == generator.OpDelete && r.FromEvent && snap.cfg.IsProtected(r.Branch):
			it.Skipped = "the branch is gone, but its environment is protected: kept"
		case r.Op == generator.OpSync && r.SHA == "":
			if heads == nil && e.App != nil {
				h, err := e.App.Branches(ctx)
				if err != nil {
					e.log().Warn("listing the app repo's branches failed", "error", err.Error())
					h = map[string]string{}
				}
				heads = h
			}
			if it.Request.SHA = heads[r.Branch]; it.Request.SHA == "" {
				it.Err = fmt.Errorf("no commit is known for branch %q: the event carries none and the app repo does not list it", r.Branch)
			}
		}
		items = append(items, it)
	}
	// Parents of new branches: the nearest existing environment, or
	// branch of this batch, in the app repo's history.
	for i := range items {
		r := &items[i].Request
		if items[i].Err != nil || items[i].Skipped != "" || r.Op != generator.OpSync || r.Parent != "" ||
			r.Branch == snap.cfg.Branches.Root || has(r.Branch) || e.App == nil {
			continue
		}
		choice, err := e.detectParent(ctx, snap, items, i)
		if err != nil {
			items[i].Err = err
			continue
		}
		r.Parent, r.ParentReason = choice.Parent, choice.Reason
		e.log().Info("parent detected", "branch", r.Branch, "parent", choice.Parent, "reason", choice.Reason)
	}
	return parentsFirst(items), nil
}

// validBranches checks the branch and, when given, its parent.
func validBranches(branch, parent string) error {
	if err := generator.ValidateBranch(branch); err != nil || parent == "" {
		return err
	}
	return generator.ValidateBranch(parent)
}

// detectParent asks the app repo for the parent of items[i]'s branch among
// the existing environments and the other branches synced in this batch.
func (e *Engine) detectParent(ctx context.Context, snap *snapshot, items []Item, i int) (Choice, error) {
	envs, err := snap.allEnvs()
	if err != nil {
		return Choice{}, err
	}
	r := items[i].Request
	cands := make([]Candidate, 0, len(envs)+len(items))
	for _, env := range envs {
		cands = append(cands, Candidate{Branch: env.Branch, SHA: env.SHA})
	}
	for j, other := range items {
		if j != i && other.Err == nil && other.Skipped == "" && other.Request.Op == generator.OpSync && other.Request.Branch != r.Branch {
			cands = append(cands, Candidate{Branch: other.Request.Branch, SHA: other.Request.SHA})
		}
	}
	choice, err := e.App.DetectParent(ctx, r.Branch, r.SHA, cands, snap.cfg.Branches.Root)
	if err != nil {
		return Choice{}, fmt.Errorf("detect the parent of %q: %w", r.Branch, err)
	}
	return choice, nil
}

// parentsFirst orders a batch so that an environment created in it comes
// before the environments created from it; the rest keep their order.
func parentsFirst(items []Item) []Item {
	idx := map[string]int{}
	for i, it := range items {
		idx[it.Request.Branch] = i
	}
	done := make([]bool, len(items))
	out := make([]Item, 0, len(items))
	var visit func(i, depth int)
	visit = func(i, depth int) {
		if done[i] || depth > len(items) {
			return
		}
		if p, ok := idx[items[i].Request.Parent]; ok && p != i {
			visit(p, depth+1)
		}
		if !done[i] {
			done[i] = true
			out = append(out, items[i])
		}
	}
	for i := range items {
		visit(i, 0)
	}
	return out
}

// commit plans the direct items on the branch head — each seeing what the
// earlier ones wrote — and commits their changes as one commit. The first
// attempt plans on the batch's snapshot; after a conflict, on the new head
// (with its own offshoot.yaml).
func (e *Engine) commit(ctx context.Context, snap *snapshot, items []Item, direct []int, out *Outcome) error {
	var planning time.Duration
	var planned []ItemResult
	res, err := e.Repo.Update(ctx, func(files fs.FS, head string) (*Change, error) {
		start := time.Now()
		defer func() { planning = time.Since(start) }()
		cfg := snap.cfg
		if head != snap.head {
			c, err := generator.LoadConfig(files)
			if err != nil {
				return nil, err
			}
			cfg = c
		}
		reqs := make([]generator.Request, len(direct))
		for k, i := range direct {
			reqs[k] = items[i].Request.Request
		}
		planned = planBatch(cfg, files, reqs)
		return batchChange(planned)
	}, UpdateOptions{})
	if err != nil {
		return err
	}
	for k, i := range direct {
		items[i].Plan, items[i].Err = planned[k].Plan, planned[k].Err
	}
	out.Commit, out.Changed, out.Previous, out.Attempts, out.Planning = res.Commit, res.Changed, res.Previous, res.Attempts, planning
	return nil
}

// batchChange is the one commit of a batch's plans.
func batchChange(items []ItemResult) (*Change, error) {
	change := &Change{Dirs: map[string]map[string][]byte{}}
	var subjects, bodies []string
	for _, it := range items {
		p := it.Plan
		if it.Err != nil || p.UpToDate {
			continue
		}
		if !p.Validated() { // never commit what kustomize has not built
			return nil, fmt.Errorf("internal error: %s %s was planned but not validated", p.Op, it.Request.Branch)
		}
		for d, f := range p.Dirs {
			change.Dirs[d] = f
		}
		subject, body, _ := strings.Cut(p.Message, "\n\n")
		subjects = append(subjects, strings.TrimPrefix(subject, "offshoot: "))
		bodies = append(bodies, subject+"\n"+body)
	}
	switch len(subjects) {
	case 0:
		return nil, nil
	case 1:
		change.Message = "offshoot: " + subjects[0] + "\n\n" + strings.SplitN(bodies[0], "\n", 2)[1]
	case 2, 3:
		change.Message = fmt.Sprintf("offshoot: %s\n\n%s", strings.Join(subjects, "; "), strings.Join(bodies, "\n\n"))
	default:
		change.Message = fmt.Sprintf("offshoot: %d environments\n\n%s", len(subjects), strings.Join(bodies, "\n\n"))
	}
	return change, nil
}

// lineages fills each written environment's lineage from the batch's own
// view (the snapshot with the batch's plans on top): no new fetch.
func (e *Engine) lineages(snap *snapshot, out *Outcome) {
	ov := &generator.Overlay{Base: snap.files}
	for _, it := range out.Items {
		if it.Err == nil && it.Plan != nil && !it.Plan.UpToDate {
			ov.Apply(it.Plan.Dirs)
		}
	}
	for i := range out.Items {
		it := &out.Items[i]
		if it.Err != nil || it.Plan == nil || it.Plan.Env == nil || it.Plan.Op == generator.OpDelete {
			continue
		}
		if chain, err := generator.Lineage(ov, it.Plan.Env); err == nil {
			it.Lineage = generator.LineageString(chain)
		}
	}
}

// notify tells Argo CD about the batch's commit, bounded by NotifyTimeout:
// an unreachable Argo CD never holds up the caller (its polling still
// picks the commit up).
func (e *Engine) notify(ctx context.Context, out *Outcome) {
	p := out.Pushed()
	if e.Notifier == nil || p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, e.notifyTimeout())
	defer cancel()
	if err := e.Notifier.Notify(ctx, *p); err != nil {
		out.NotifyErr = err
		e.log().Warn("telling Argo CD about the commit failed", "commit", out.Commit, "apps", len(p.Apps), "error", err.Error())
		return
	}
	out.Notified = p.Apps
}

func (e *Engine) notifyTimeout() time.Duration {
	if e.NotifyTimeout > 0 {
		return e.NotifyTimeout
	}
	return 5 * time.Second
}

func (e *Engine) log() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// RefusedItems are the items that were refused (nil Outcome: none).
func (o *Outcome) RefusedItems() []Item {
	if o == nil {
		return nil
	}
	var out []Item
	for _, it := range o.Items {
		if it.Err != nil {
			out = append(out, it)
		}
	}
	return out
}
