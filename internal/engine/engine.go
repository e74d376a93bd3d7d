// Package engine runs offshoot's use cases: it reads the environments repo
// through the git adapter, asks the generator for a validated plan and
// commits it. Commands in cmd/offshoot only parse flags and print.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/apprepo"
	"github.com/offshoot-dev/offshoot/internal/gitrepo"
)

// Repo is what the engine needs of the environments repo.
type Repo interface {
	Snapshot(ctx context.Context) (fs.FS, string, error)
	Update(ctx context.Context, fn gitrepo.ChangeFunc, o gitrepo.UpdateOptions) (gitrepo.Result, error)
}

// Engine applies branch events to an environments repo.
type Engine struct {
	Repo Repo
	Now  func() time.Time
}

// Outcome of an applied request.
type Outcome struct {
	Plan     *generator.Plan
	Commit   string
	Changed  bool
	Previous string // with Changed, the head the commit replaced
	Attempts int
}

// Pushed is one commit pushed to the environments repo, as offshoot tells
// Argo CD about it (serve after each batch, the CLI after each command).
type Pushed struct {
	Commit   string   // the new head
	Previous string   // the head it replaced ("" when unknown)
	Apps     []string // the Applications it touched (the environments' namespaces)
	Paths    []string // the environment directories it wrote or removed (envs/<env>)
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

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Apply plans the request on the current head, validates it and commits
// it. Nothing is committed when planning or validation fails; when the
// branch moved meanwhile, the plan is made again on the new head.
func (e *Engine) Apply(ctx context.Context, req generator.Request) (*Outcome, error) {
	if req.Now.IsZero() {
		req.Now = e.now()
	}
	var plan *generator.Plan
	res, err := e.Repo.Update(ctx, func(files fs.FS) (*gitrepo.Change, error) {
		cfg, err := generator.LoadConfig(files)
		if err != nil {
			return nil, err
		}
		p, err := generator.Make(cfg, files, req)
		if err != nil {
			return nil, err
		}
		plan = p
		if p.UpToDate {
			return nil, nil
		}
		return &gitrepo.Change{Message: p.Message, Dirs: p.Dirs}, nil
	}, gitrepo.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return &Outcome{Plan: plan, Commit: res.Commit, Changed: res.Changed, Previous: res.Previous, Attempts: res.Attempts}, nil
}

// ErrInitialized is returned by Init on a repo that already has offshoot.yaml.
var ErrInitialized = errors.New("the environments repo is already initialised (it has offshoot.yaml)")

// Init commits the scaffold of a new environments repo.
func (e *Engine) Init(ctx context.Context, files map[string][]byte) (*Outcome, error) {
	res, err := e.Repo.Update(ctx, func(cur fs.FS) (*gitrepo.Change, error) {
		if _, err := fs.Stat(cur, generator.ConfigFile); err == nil {
			return nil, ErrInitialized
		}
		return &gitrepo.Change{Message: "offshoot: initialise environments repo", Files: files}, nil
	}, gitrepo.UpdateOptions{AllowEmptyRepo: true})
	if err != nil {
		return nil, err
	}
	return &Outcome{Commit: res.Commit, Changed: res.Changed, Attempts: res.Attempts}, nil
}

// List returns every environment, read from metadata only.
func (e *Engine) List(ctx context.Context) ([]*generator.Environment, error) {
	files, _, err := e.Repo.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return generator.ListEnvs(files)
}

// Render builds a branch's environment as Argo CD will.
func (e *Engine) Render(ctx context.Context, branch string) ([]byte, error) {
	files, _, err := e.Repo.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	env, err := generator.FindEnv(files, branch)
	if err != nil {
		return nil, err
	}
	out, _, err := generator.Build(files, generator.EnvDir(env.Name), nil)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", branch, err)
	}
	return out, nil
}

// Warm reads the environments repo and builds one environment without
// committing anything, so that the first event does not also pay for
// decoding the repo's large trees and loading kustomize's OpenAPI schema
// (serve does it before it reports ready). It returns the environment
// built ("" when there is none yet).
func (e *Engine) Warm(ctx context.Context) (string, error) {
	files, _, err := e.Repo.Snapshot(ctx)
	if err != nil {
		return "", err
	}
	entries, err := fs.ReadDir(files, generator.EnvsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for _, d := range entries {
		if !d.IsDir() {
			continue
		}
		if _, _, err := generator.Build(files, generator.EnvDir(d.Name()), nil); err != nil {
			return d.Name(), fmt.Errorf("warm-up build of %s: %w", d.Name(), err)
		}
		return d.Name(), nil
	}
	return "", nil
}

// ItemResult is the outcome of one request of a batch.
type ItemResult struct {
	Request generator.Request
	Plan    *generator.Plan // nil when Err is set
	Err     error           // the request was refused; the others still apply
}

// BatchOutcome is one commit for many requests.
type BatchOutcome struct {
	Items    []ItemResult
	Commit   string
	Changed  bool
	Previous string // with Changed, the head the commit replaced
	Attempts int
	// Planning is the time spent planning, building and checking (the
	// last attempt's); the rest of the batch's time is writing the commit
	// and pushing it.
	Planning time.Duration
}

// ApplyBatch plans every request on the same head — each one seeing what
// the earlier ones wrote — and commits all their changes as one commit. A
// request that is refused (bad branch name, unknown parent…) is reported in
// its item and does not stop the others; an error reading the repo, a
// broken offshoot.yaml or a failed push fails the whole batch, so the
// caller can retry it: nothing is lost.
func (e *Engine) ApplyBatch(ctx context.Context, reqs []generator.Request) (*BatchOutcome, error) {
	now := e.now()
	var items []ItemResult
	var planning time.Duration
	res, err := e.Repo.Update(ctx, func(files fs.FS) (*gitrepo.Change, error) {
		start := time.Now()
		defer func() { planning = time.Since(start) }()
		cfg, err := generator.LoadConfig(files)
		if err != nil {
			return nil, err
		}
		items = planBatch(cfg, files, reqs, now)
		change := &gitrepo.Change{Dirs: map[string]map[string][]byte{}}
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
	}, gitrepo.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return &BatchOutcome{Items: items, Commit: res.Commit, Changed: res.Changed, Previous: res.Previous, Attempts: res.Attempts, Planning: planning}, nil
}

// planBatch plans every request on files, each seeing what the earlier ones
// wrote. The plans are made one after the other, and each one's kustomize
// build and checks (most of a batch's cost) start on a worker as soon as it
// is made, in parallel with each other and with the planning. If
// any validation fails, the batch is planned again one request at a time,
// validating each before the next sees it, so that a request depending on
// a refused one (a child of a parent created in the same batch) is refused
// with its own reason, exactly as if the events had come one by one.
func planBatch(cfg *generator.Config, files fs.FS, reqs []generator.Request, now time.Time) []ItemResult {
	items := make([]ItemResult, len(reqs))
	for i, req := range reqs {
		if req.Now.IsZero() {
			req.Now = now
		}
		items[i].Request = req
	}
	// Each plan is built as soon as it is made, while the next ones are
	// planned.
	v := generator.NewValidator(files, len(items), runtime.GOMAXPROCS(0))
	planInOrder(cfg, files, items, generator.Prepare, v.Add)
	for _, err := range v.Wait() {
		if err != nil {
			planInOrder(cfg, files, items, generator.Make, nil)
			break
		}
	}
	return items
}

// planInOrder plans items[i].Request with plan, one after the other, each
// on top of what the earlier ones wrote, and hands each plan made to
// planned (when not nil).
func planInOrder(cfg *generator.Config, files fs.FS, items []ItemResult,
	plan func(*generator.Config, fs.FS, generator.Request) (*generator.Plan, error), planned func(int, *generator.Plan)) {
	ov := &generator.Overlay{Base: files}
	for i := range items {
		p, err := plan(cfg, ov, items[i].Request)
		items[i].Plan, items[i].Err = p, err
		if err == nil && !p.UpToDate {
			ov.Apply(p.Dirs)
			if planned != nil {
				planned(i, p)
			}
		}
	}
}

// ParentDetector finds the parent of a new branch in the app repo's history.
type ParentDetector interface {
	DetectParent(ctx context.Context, branch, head string, candidates []apprepo.Candidate, root string) (apprepo.Choice, error)
}

// DetectParent fills in req.Parent for a sync that creates a non-root
// environment without one: the existing environment whose branch is
// nearest in the app repo's history. Other requests are returned as they are.
func (e *Engine) DetectParent(ctx context.Context, app ParentDetector, req generator.Request) (generator.Request, error) {
	if req.Op != generator.OpSync || req.Parent != "" {
		return req, nil
	}
	files, _, err := e.Repo.Snapshot(ctx)
	if err != nil {
		return req, err
	}
	cfg, err := generator.LoadConfig(files)
	if err != nil {
		return req, err
	}
	if req.Branch == cfg.Branches.Root {
		return req, nil
	}
	if _, err := generator.FindEnv(files, req.Branch); err == nil {
		return req, nil // it exists: its recorded parent stays
	}
	envs, err := generator.ListEnvs(files)
	if err != nil {
		return req, err
	}
	cands := make([]apprepo.Candidate, 0, len(envs))
	for _, env := range envs {
		cands = append(cands, apprepo.Candidate{Branch: env.Branch, SHA: env.SHA})
	}
	choice, err := app.DetectParent(ctx, req.Branch, req.SHA, cands, cfg.Branches.Root)
	if err != nil {
		return req, fmt.Errorf("detect the parent of %q: %w", req.Branch, err)
	}
	req.Parent, req.ParentReason = choice.Parent, choice.Reason
	return req, nil
}

// LineageOf is "main → staging → feature_1" for a branch's environment.
func (e *Engine) LineageOf(ctx context.Context, branch string) (string, error) {
	files, _, err := e.Repo.Snapshot(ctx)
	if err != nil {
		return "", err
	}
	env, err := generator.FindEnv(files, branch)
	if err != nil {
		return "", err
	}
	chain, err := generator.Lineage(files, env)
	if err != nil {
		return "", err
	}
	return generator.LineageString(chain), nil
}
