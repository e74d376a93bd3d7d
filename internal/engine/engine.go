// Package engine runs offshoot's use cases. Every branch event — from the
// CLI, a webhook or reconcile — goes through Handle: one snapshot of the
// environments repo, one parse of offshoot.yaml, then the generator's
// validated plan, one commit (or a pull request), the report on the app
// repo and the word to Argo CD. The engine owns its ports (ports.go); the
// adapters in internal/ implement them.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
)

// Engine applies branch events to an environments repo.
type Engine struct {
	// Repo is the environments repo (required).
	Repo Repo
	// Review is the environments repo's side of pull-request mode, and PRs
	// the code host's pull requests; either nil: pull-request mode is
	// refused with a clear reason.
	Review ReviewRepo
	PRs    Reviewer
	// App is the app repo; nil: no parent detection, no SHA lookup, no
	// reconcile.
	App AppRepo
	// Reporter reports each environment on the app repo; nil: no reports.
	Reporter Reporter
	// Notifier tells Argo CD about each commit; nil: Argo CD polls.
	Notifier Notifier
	// NotifyTimeout bounds one notification (default 5s).
	NotifyTimeout time.Duration
	// Mode overrides offshoot.yaml's review section ("direct" or "pr").
	Mode string
	// AutoMerge asks for every pull request to be merged once allowed
	// (offshoot.yaml's review.autoMerge does too).
	AutoMerge bool
	// NoRetry: the caller does not try a failed batch again (the CLI), so
	// Handle reports a temporary failure on the app repo as well.
	NoRetry bool
	// AppURL links an environment's Argo CD Application (by name) in
	// reports (nil: no link).
	AppURL func(app string) string
	// CommitURL links an environments-repo commit in reports (nil: no link).
	CommitURL func(commit string) string
	Logger    *slog.Logger
	Now       func() time.Time

	cfg configCache
}

func (e *Engine) lastConfig() *generator.Config { return e.cfg.p.Load() }

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// ErrInitialized is returned by Init on a repo that already has offshoot.yaml.
var ErrInitialized = errors.New("the environments repo is already initialised (it has offshoot.yaml)")

// Initialized is what Init did.
type Initialized struct {
	Commit   string
	Attempts int
}

// Init commits the scaffold of a new environments repo.
func (e *Engine) Init(ctx context.Context, files map[string][]byte) (*Initialized, error) {
	res, err := e.Repo.Update(ctx, func(cur fs.FS, _ string) (*Change, error) {
		if _, err := fs.Stat(cur, generator.ConfigFile); err == nil {
			return nil, ErrInitialized
		}
		return &Change{Message: "offshoot: initialise environments repo", Files: files}, nil
	}, UpdateOptions{AllowEmptyRepo: true})
	if err != nil {
		return nil, err
	}
	return &Initialized{Commit: res.Commit, Attempts: res.Attempts}, nil
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
	if err := generator.ValidateBranch(branch); err != nil {
		return nil, err
	}
	files, _, err := e.Repo.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	env, err := generator.FindEnv(files, branch)
	if err != nil {
		return nil, err
	}
	out, _, err := generator.BuildEnv(files, generator.EnvDir(env.Name), nil)
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
		if _, _, err := generator.BuildEnv(files, generator.EnvDir(d.Name()), nil); err != nil {
			return d.Name(), fmt.Errorf("warm-up build of %s: %w", d.Name(), err)
		}
		return d.Name(), nil
	}
	return "", nil
}

// Config reads offshoot.yaml at the head of the environments repo.
func (e *Engine) Config(ctx context.Context) (*generator.Config, error) {
	snap, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return snap.cfg, nil
}

// ItemResult is the plan (or refusal) of one request of a batch.
type ItemResult struct {
	Request generator.Request
	Plan    *generator.Plan // nil when Err is set
	Err     error           // the request was refused; the others still apply
}

// planBatch plans every request on files, each seeing what the earlier ones
// wrote. The plans are made one after the other, and each one's kustomize
// build and checks (most of a batch's cost) start on a worker as soon as it
// is made, in parallel with each other and with the planning. If
// any validation fails, the batch is planned again one request at a time,
// validating each before the next sees it, so that a request depending on
// a refused one (a child of a parent created in the same batch) is refused
// with its own reason, exactly as if the events had come one by one.
func planBatch(cfg *generator.Config, files fs.FS, reqs []generator.Request) []ItemResult {
	items := make([]ItemResult, len(reqs))
	for i, req := range reqs {
		items[i].Request = req
	}
	v := generator.NewValidator(files, len(items), runtime.GOMAXPROCS(0))
	planInOrder(cfg, files, items, generator.PlanUnchecked, v.Add)
	for _, err := range v.Wait() {
		if err != nil {
			planInOrder(cfg, files, items, generator.PlanChecked, nil)
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
