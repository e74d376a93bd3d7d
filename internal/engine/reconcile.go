package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/offshoot-dev/offshoot/generator"
)

// ReconcileResult says what a reconcile found and did.
type ReconcileResult struct {
	Created, Updated, Deleted []string
	// Environments is how many the environments repo held.
	Environments int
	Outcome      *Outcome
}

// ErrNoBranches: the app repo listing came back empty; reconcile then
// changes nothing (an outage is not "every branch deleted").
var ErrNoBranches = errors.New("the app repo listed no branches: nothing reconciled")

// ErrNoAppRepo: the use case needs the app repo and none is configured.
var ErrNoAppRepo = errors.New("reconcile needs the app repo")

// Reconcile converges the environments to the app repo's branches: it
// lists them and handles, as one batch on one snapshot, the events that
// were missed — environments for wanted branches that have none, new SHAs,
// and removal of environments whose branch is gone (never protected ones).
// A failed or empty listing changes nothing.
func (e *Engine) Reconcile(ctx context.Context) (*ReconcileResult, error) {
	if e.App == nil {
		return nil, ErrNoAppRepo
	}
	heads, err := e.App.Branches(ctx)
	if err != nil {
		return nil, fmt.Errorf("list app branches: %w (nothing reconciled)", err)
	}
	if len(heads) == 0 {
		return nil, ErrNoBranches
	}
	snap, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	envs, err := snap.allEnvs()
	if err != nil {
		return nil, err
	}
	cfg := snap.cfg
	res := &ReconcileResult{Environments: len(envs)}
	req := func(op generator.Op, branch, sha string) Request {
		return Request{Request: generator.Request{Op: op, Branch: branch, SHA: sha}, Source: "reconcile", FromEvent: true}
	}
	var reqs []Request
	have := map[string]bool{}
	for _, env := range envs {
		have[env.Branch] = true
		head, ok := heads[env.Branch]
		switch {
		case !ok && !env.Protected && !cfg.IsProtected(env.Branch):
			res.Deleted = append(res.Deleted, env.Branch)
			reqs = append(reqs, req(generator.OpDelete, env.Branch, ""))
		case ok && head != env.SHA:
			res.Updated = append(res.Updated, env.Branch)
			reqs = append(reqs, req(generator.OpSync, env.Branch, head))
		}
	}
	var missing []string
	for b := range heads {
		if !have[b] && cfg.WantsBranch(b) {
			missing = append(missing, b)
		}
	}
	// The root first, then by name: parents tend to exist before children.
	sort.Slice(missing, func(i, j int) bool {
		if (missing[i] == cfg.Branches.Root) != (missing[j] == cfg.Branches.Root) {
			return missing[i] == cfg.Branches.Root
		}
		return missing[i] < missing[j]
	})
	for _, b := range missing {
		res.Created = append(res.Created, b)
		reqs = append(reqs, req(generator.OpSync, b, heads[b]))
	}
	if len(reqs) == 0 {
		return res, nil
	}
	if res.Outcome, err = e.handle(ctx, snap, reqs); err != nil {
		if !IsTemporary(err) {
			e.ReportFailure(ctx, reqs, err)
		}
		return res, err
	}
	return res, nil
}

// Intake is an event as it arrives, before it is queued.
type Intake struct {
	Source string // push, create, delete, pull_request
	Sync   bool   // false: a deletion
	Branch string
	Labels []string // a pull request's labels
}

// Accept says whether an arriving event is wanted, by offshoot.yaml's
// events section as the engine last read it (no fetch: it answers a
// webhook at once). Before any read, everything is accepted; the batch
// decides.
func (e *Engine) Accept(in Intake) (bool, string) {
	cfg := e.lastConfig()
	if cfg == nil {
		return true, ""
	}
	if in.Source == "pull_request" {
		pr := cfg.Events.PullRequests
		if !pr.Enabled {
			return false, "pull request environments are off (events.pullRequests.enabled)"
		}
		if pr.Label != "" && in.Sync && !contains(in.Labels, pr.Label) {
			return false, fmt.Sprintf("pull request has no %q label", pr.Label)
		}
		return true, ""
	}
	if in.Sync && !cfg.WantsBranch(in.Branch) {
		return false, "branch does not match events.branches"
	}
	return true, ""
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// configCache holds the offshoot.yaml of the last snapshot.
type configCache struct {
	p atomic.Pointer[generator.Config]
}
