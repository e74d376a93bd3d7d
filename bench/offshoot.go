package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"github.com/offshoot-dev/offshoot/internal/gitrepo"
)

// Offshoot is offshoot's own event path as `offshoot serve` runs it: one
// long-lived gitrepo.Repo (a warm cached clone, fetched incrementally) and
// engine.Handle per event (a batch of one, as the CLI) — plan, in-process kustomize validation, commit in
// the object database, push with a lease.
type Offshoot struct {
	Engine *engine.Engine
	Repo   *gitrepo.Repo
}

// OpenOffshoot opens url with a cached clone under cacheDir and warms it
// (the first fetch downloads the whole repo; it is not measured).
func OpenOffshoot(ctx context.Context, url, cacheDir string) (*Offshoot, error) {
	repo, err := gitrepo.Open(ctx, gitrepo.Options{Location: url, CacheDir: cacheDir, AuthorName: "offshoot-bench"})
	if err != nil {
		return nil, err
	}
	if _, _, err := repo.Snapshot(ctx); err != nil {
		return nil, err
	}
	return &Offshoot{Engine: &engine.Engine{Repo: repo}, Repo: repo}, nil
}

func (o *Offshoot) apply(ctx context.Context, req generator.Request) (time.Duration, error) {
	start := time.Now()
	out, err := o.Engine.Handle(ctx, []engine.Request{{Request: req, Source: "bench"}})
	d := time.Since(start)
	if err == nil {
		err = out.Items[0].Err
	}
	if err != nil {
		return d, fmt.Errorf("%s %s: %w", req.Op, req.Branch, err)
	}
	if !out.Changed {
		return d, fmt.Errorf("%s %s: nothing committed", req.Op, req.Branch)
	}
	return d, nil
}

// NewSHA moves an existing environment to a new app commit.
func (o *Offshoot) NewSHA(ctx context.Context, branch, sha string) (time.Duration, error) {
	return o.apply(ctx, generator.Request{Op: generator.OpSync, Branch: branch, SHA: sha})
}

// NewBranch creates the environment of a branch cut from the root.
func (o *Offshoot) NewBranch(ctx context.Context, branch, sha string) (time.Duration, error) {
	return o.apply(ctx, generator.Request{Op: generator.OpSync, Branch: branch, Parent: Root, SHA: sha})
}

// Delete removes a branch's environment.
func (o *Offshoot) Delete(ctx context.Context, branch string) (time.Duration, error) {
	return o.apply(ctx, generator.Request{Op: generator.OpDelete, Branch: branch})
}
