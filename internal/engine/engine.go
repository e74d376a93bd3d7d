// Package engine runs offshoot's use cases: it reads the environments repo
// through the git adapter, asks the generator for a validated plan and
// commits it. Commands in cmd/offshoot only parse flags and print.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
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
	Attempts int
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
	return &Outcome{Plan: plan, Commit: res.Commit, Changed: res.Changed, Attempts: res.Attempts}, nil
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
