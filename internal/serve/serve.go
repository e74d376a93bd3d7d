// Package serve is offshoot's event loop: webhook events are queued
// (bounded, coalesced per branch), and one worker turns each batch into one
// commit of the environments repo. A reconciler compares the app repo's
// branches with the environments and converges them, healing any event
// that was missed or lost in a crash.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/apprepo"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"github.com/offshoot-dev/offshoot/internal/webhook"
)

// AppRepo is what serve needs of the app repository.
type AppRepo interface {
	Branches(ctx context.Context) (map[string]string, error)
	DetectParent(ctx context.Context, branch, head string, candidates []apprepo.Candidate, root string) (apprepo.Choice, error)
}

// Options configure a Server.
type Options struct {
	Engine *engine.Engine
	// App is the app repository; nil disables parent detection, SHA lookup
	// for create events, and reconcile.
	App AppRepo
	// Window is how long the worker waits after the first event of a batch
	// for more to coalesce (default 200ms).
	Window time.Duration
	// QueueSize bounds the number of branches waiting (default 10,000).
	QueueSize int
	// RetryDelay is the pause before a failed batch is tried again (default 2s).
	RetryDelay time.Duration
	Logger     *slog.Logger
	Metrics    *Metrics
	// Reviewer opens pull requests for branches whose changes go through
	// review (offshoot.yaml review section); nil: such events are refused.
	Reviewer engine.Reviewer
	// Reporter reports each environment back on the app repo; nil: no reports.
	Reporter engine.Reporter
	// ArgoCDURL links statuses and comments to the Argo CD Application.
	ArgoCDURL string
	// Notify, if set, tells Argo CD about each commit that changed something,
	// so that Argo CD re-reads git now instead of at its next poll.
	Notify func(ctx context.Context, p engine.Pushed) error
	// NotifyTimeout bounds one Notify (default 5s): an unreachable Argo CD
	// must not hold up the next batch (its own polling still picks the
	// commit up).
	NotifyTimeout time.Duration
}

// Server queues events and applies them.
type Server struct {
	o       Options
	mu      sync.Mutex
	pending map[string]webhook.Event // by branch: the latest event wins
	order   []string                 // branches in arrival order
	wake    chan struct{}
	cfgMu   sync.RWMutex
	cfg     *generator.Config
	warm    chan struct{} // closed once the worker has warmed up
}

// New makes a Server.
func New(o Options) *Server {
	if o.NotifyTimeout <= 0 {
		o.NotifyTimeout = 5 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 200 * time.Millisecond
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	return &Server{o: o, pending: map[string]webhook.Event{}, wake: make(chan struct{}, 1), warm: make(chan struct{})}
}

// Offer queues an event without blocking (webhook.Sink). Events for a
// branch already waiting are merged into one: the latest SHA wins.
func (s *Server) Offer(ev webhook.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.pending[ev.Branch]; ok {
		s.pending[ev.Branch] = merge(old, ev)
	} else {
		if len(s.pending) >= s.o.QueueSize {
			return webhook.ErrBusy
		}
		s.pending[ev.Branch] = ev
		s.order = append(s.order, ev.Branch)
	}
	s.o.Metrics.QueueDepth.Set(float64(len(s.pending)))
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// merge coalesces two events of one branch, newest last.
func merge(old, ev webhook.Event) webhook.Event {
	if ev.Kind == webhook.KindSync {
		if ev.SHA == "" && old.Kind == webhook.KindSync {
			ev.SHA = old.SHA // a create after a push adds nothing
		}
		if ev.Parent == "" {
			ev.Parent = old.Parent
		}
	}
	return ev
}

// Pending is the number of branches waiting.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

func (s *Server) take() []webhook.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]webhook.Event, 0, len(s.order))
	for _, b := range s.order {
		out = append(out, s.pending[b])
	}
	s.pending, s.order = map[string]webhook.Event{}, nil
	s.o.Metrics.QueueDepth.Set(0)
	return out
}

// requeue puts back events of a failed batch, unless a newer event for the
// same branch arrived meanwhile.
func (s *Server) requeue(evs []webhook.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range evs {
		if newer, ok := s.pending[ev.Branch]; ok {
			s.pending[ev.Branch] = merge(ev, newer)
			continue
		}
		s.pending[ev.Branch] = ev
		s.order = append(s.order, ev.Branch)
	}
	s.o.Metrics.QueueDepth.Set(float64(len(s.pending)))
}

// Warmed reports whether the worker has warmed up (see Run).
func (s *Server) Warmed() bool {
	select {
	case <-s.warm:
		return true
	default:
		return false
	}
}

// warmUp builds one environment without committing (engine.Warm), so that
// the first burst does not pay for decoding the repo and loading
// kustomize's schema on top of its own work. A failure is logged, not
// fatal: the events themselves report what is wrong.
func (s *Server) warmUp(ctx context.Context) {
	defer close(s.warm)
	start := time.Now()
	env, err := s.o.Engine.Warm(ctx)
	if err != nil {
		s.o.Logger.Warn("warm-up failed", "env", env, "error", err.Error())
		return
	}
	s.o.Logger.Info("warmed up", "env", env, "seconds", time.Since(start).Seconds())
}

// Run warms up, then works the queue until ctx is done, then finishes what
// is queued (graceful shutdown: the caller stops accepting events first).
// Events offered meanwhile wait in the queue.
func (s *Server) Run(ctx context.Context) {
	s.warmUp(ctx)
	for {
		select {
		case <-ctx.Done():
			s.drain()
			return
		case <-s.wake:
		}
		// Let a burst arrive, so that it becomes one commit.
		select {
		case <-ctx.Done():
		case <-time.After(s.o.Window):
		}
		evs := s.take()
		if len(evs) == 0 {
			continue
		}
		if err := s.process(ctx, evs); err != nil {
			s.requeue(evs)
			s.o.Logger.Error("batch failed; will retry", "events", len(evs), "error", err.Error())
			select {
			case <-ctx.Done():
			case <-time.After(s.o.RetryDelay):
			}
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}
}

// drain applies what is still queued, with a bounded effort.
func (s *Server) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for attempt := 0; attempt < 3; attempt++ {
		evs := s.take()
		if len(evs) == 0 {
			return
		}
		if err := s.process(ctx, evs); err != nil {
			s.requeue(evs)
			s.o.Logger.Error("drain failed", "events", len(evs), "error", err.Error())
			continue
		}
	}
	if n := s.Pending(); n > 0 {
		s.o.Logger.Error("shutting down with events not applied; the next reconcile will converge them", "events", n)
	}
}

// Flush processes everything queued now (tests, reconcile).
func (s *Server) Flush(ctx context.Context) error {
	evs := s.take()
	if len(evs) == 0 {
		return nil
	}
	if err := s.process(ctx, evs); err != nil {
		s.requeue(evs)
		return err
	}
	return nil
}

// Config returns the last configuration read from the environments repo.
func (s *Server) Config() *generator.Config {
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	return s.cfg
}

// LoadConfig reads offshoot.yaml from the environments repo.
func (s *Server) LoadConfig(ctx context.Context) (*generator.Config, fs.FS, error) {
	files, _, err := s.o.Engine.Repo.Snapshot(ctx)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := generator.LoadConfig(files)
	if err != nil {
		return nil, nil, err
	}
	s.cfgMu.Lock()
	s.cfg = cfg
	s.cfgMu.Unlock()
	return cfg, files, nil
}

// Filter is the webhook filter from offshoot.yaml's events section.
func (s *Server) Filter(ev webhook.Event) (bool, string) {
	cfg := s.Config()
	if cfg == nil {
		return true, ""
	}
	if ev.Source == "pull_request" {
		pr := cfg.Events.PullRequests
		if !pr.Enabled {
			return false, "pull request environments are off (events.pullRequests.enabled)"
		}
		if pr.Label != "" && ev.Kind == webhook.KindSync && !contains(ev.Labels, pr.Label) {
			return false, fmt.Sprintf("pull request has no %q label", pr.Label)
		}
		return true, ""
	}
	if ev.Kind == webhook.KindSync && !cfg.WantsBranch(ev.Branch) {
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

// process turns events into requests — looking up missing SHAs and
// detecting parents — and applies them as one commit.
func (s *Server) process(ctx context.Context, evs []webhook.Event) error {
	start := time.Now()
	cfg, files, err := s.LoadConfig(ctx)
	if err != nil {
		return err
	}
	// Only the batch's own environments are read; every env.yaml is read
	// (ListEnvs) only when a new branch needs its parent detected.
	exists := map[string]bool{}
	has := func(branch string) bool {
		ok, seen := exists[branch]
		if !seen {
			_, err := generator.FindEnv(files, branch)
			ok = err == nil
			exists[branch] = ok
		}
		return ok
	}
	var envs []*generator.Environment
	listed := false
	allEnvs := func() ([]*generator.Environment, error) {
		if !listed {
			var err error
			if envs, err = generator.ListEnvs(files); err != nil {
				return nil, err
			}
			listed = true
		}
		return envs, nil
	}
	var heads map[string]string
	headsOnce := func() map[string]string {
		if heads == nil && s.o.App != nil {
			h, err := s.o.App.Branches(ctx)
			if err != nil {
				s.o.Logger.Warn("listing app branches failed", "error", err.Error())
				h = map[string]string{}
			}
			heads = h
		}
		return heads
	}
	var reqs []generator.Request
	var used []webhook.Event
	for _, ev := range evs {
		req := generator.Request{Branch: ev.Branch, SHA: ev.SHA, Parent: ev.Parent, KeepParent: true}
		if ev.Kind == webhook.KindDelete {
			req.Op = generator.OpDelete
			if !has(ev.Branch) {
				continue // nothing to delete
			}
			if cfg.IsProtected(ev.Branch) {
				s.o.Logger.Info("branch deleted, but its environment is protected: kept", "branch", ev.Branch)
				continue
			}
			reqs, used = append(reqs, req), append(used, ev)
			continue
		}
		req.Op = generator.OpSync
		if req.SHA == "" {
			req.SHA = headsOnce()[ev.Branch]
			if req.SHA == "" {
				s.o.Logger.Warn("no commit known for branch; skipped until the next reconcile", "branch", ev.Branch, "delivery", ev.Delivery)
				continue
			}
		}
		reqs, used = append(reqs, req), append(used, ev)
	}
	// Parents of new branches: the nearest existing environment or branch
	// of this batch in the app repo's history.
	keep := reqs[:0]
	keepEv := used[:0]
	for i, req := range reqs {
		if req.Op == generator.OpSync && req.Parent == "" && req.Branch != cfg.Branches.Root && !has(req.Branch) {
			envs, err := allEnvs()
			if err != nil {
				return err
			}
			choice, err := s.detect(ctx, req.Branch, req.SHA, envs, reqs, cfg.Branches.Root)
			if err != nil {
				s.o.Logger.Warn("no parent found; skipped", "branch", req.Branch, "error", err.Error())
				continue
			}
			req.Parent, req.ParentReason = choice.Parent, choice.Reason
			s.o.Logger.Info("parent detected", "branch", req.Branch, "parent", choice.Parent, "reason", choice.Reason)
		}
		keep, keepEv = append(keep, req), append(keepEv, used[i])
	}
	reqs, used = parentsFirst(keep, keepEv)
	reqs, used = s.proposeReviewed(ctx, cfg, reqs, used)
	if len(reqs) == 0 {
		return nil
	}
	out, err := s.o.Engine.ApplyBatch(ctx, reqs)
	if err != nil {
		for _, ev := range used {
			s.o.Metrics.Applied.WithLabelValues(ev.Source, "retry").Inc()
		}
		return err
	}
	s.o.Metrics.CommitSeconds.Observe(time.Since(start).Seconds())
	for i, it := range out.Items {
		outcome := "applied"
		switch {
		case it.Err != nil:
			outcome = "refused"
			s.o.Logger.Warn("event refused", "branch", it.Request.Branch, "delivery", used[i].Delivery, "error", it.Err.Error())
		case it.Plan.UpToDate:
			outcome = "up_to_date"
		}
		s.o.Metrics.Applied.WithLabelValues(used[i].Source, outcome).Inc()
		if it.Request.Op == generator.OpSync {
			s.report(ctx, &engine.Result{Mode: generator.ModeDirect, Plan: it.Plan,
				Direct: &engine.Outcome{Plan: it.Plan, Commit: out.Commit, Changed: out.Changed}}, it.Err, it.Request)
		}
	}
	s.o.Logger.Info("batch committed", "events", len(reqs), "commit", out.Commit, "changed", out.Changed, "attempts", out.Attempts,
		"seconds", time.Since(start).Seconds(), "planning_seconds", out.Planning.Seconds())
	if s.o.Notify != nil && out.Changed {
		p := engine.Pushed{Commit: out.Commit, Previous: out.Previous}
		for _, it := range out.Items {
			if it.Err != nil || it.Plan == nil || it.Plan.UpToDate || it.Plan.Env == nil {
				continue
			}
			p.Apps = append(p.Apps, it.Plan.Env.Namespace)
			p.Paths = append(p.Paths, engine.PlanPaths(it.Plan)...)
		}
		nctx, cancel := context.WithTimeout(ctx, s.o.NotifyTimeout)
		err := s.o.Notify(nctx, p)
		cancel()
		if err != nil {
			s.o.Logger.Warn("telling Argo CD about the commit failed", "commit", out.Commit, "apps", len(p.Apps), "error", err.Error())
		}
	}
	return nil
}

// proposeReviewed takes the requests whose branch goes through a pull
// request (offshoot.yaml review section) out of the batch and proposes each
// one; the rest are returned for the direct commit.
func (s *Server) proposeReviewed(ctx context.Context, cfg *generator.Config, reqs []generator.Request, evs []webhook.Event) ([]generator.Request, []webhook.Event) {
	var direct []generator.Request
	var directEv []webhook.Event
	for i, req := range reqs {
		if cfg.ReviewMode(req.Branch) != generator.ModePR {
			direct, directEv = append(direct, req), append(directEv, evs[i])
			continue
		}
		if s.o.Reviewer == nil {
			s.o.Logger.Error("branch goes through pull requests, but no GitHub access is configured; skipped", "branch", req.Branch)
			s.o.Metrics.Applied.WithLabelValues(evs[i].Source, "refused").Inc()
			continue
		}
		out, err := s.o.Engine.Propose(ctx, s.o.Reviewer, req, false) // review.autoMerge is read by Propose
		outcome := "proposed"
		if err != nil {
			outcome = "refused"
			s.o.Logger.Warn("proposal failed; the next reconcile retries it", "branch", req.Branch, "error", err.Error())
		} else if out.PR != nil {
			s.o.Logger.Info("pull request", "branch", req.Branch, "pr", out.PR.Number, "created", out.Created, "pushed", out.Pushed)
		}
		s.o.Metrics.Applied.WithLabelValues(evs[i].Source, outcome).Inc()
		if req.Op == generator.OpSync {
			res := &engine.Result{Mode: generator.ModePR}
			if out != nil {
				res.Review, res.Plan = out, out.Plan
			}
			s.report(ctx, res, err, req)
		}
	}
	return direct, directEv
}

// report sets the app commit's status and the PR comment, if configured.
// A failed report is logged: it never fails the environment change.
func (s *Server) report(ctx context.Context, res *engine.Result, err error, req generator.Request) {
	if s.o.Reporter == nil || req.SHA == "" {
		return
	}
	in := engine.ReportInput{Result: res, Err: err, Branch: req.Branch, SHA: req.SHA, ArgoCDURL: s.o.ArgoCDURL}
	if err == nil {
		in.Lineage, _ = s.o.Engine.LineageOf(ctx, req.Branch)
	}
	if rerr := engine.Report(ctx, s.o.Reporter, in); rerr != nil {
		s.o.Logger.Warn("reporting to GitHub failed", "branch", req.Branch, "error", rerr.Error())
	}
}

// parentsFirst orders a batch so that an environment created in it comes
// before the environments created from it.
func parentsFirst(reqs []generator.Request, evs []webhook.Event) ([]generator.Request, []webhook.Event) {
	idx := map[string]int{}
	for i, r := range reqs {
		idx[r.Branch] = i
	}
	done := make([]bool, len(reqs))
	var outR []generator.Request
	var outE []webhook.Event
	var visit func(i, depth int)
	visit = func(i, depth int) {
		if done[i] || depth > len(reqs) {
			return
		}
		if p, ok := idx[reqs[i].Parent]; ok && p != i {
			visit(p, depth+1)
		}
		if !done[i] {
			done[i] = true
			outR, outE = append(outR, reqs[i]), append(outE, evs[i])
		}
	}
	for i := range reqs {
		visit(i, 0)
	}
	return outR, outE
}

func (s *Server) detect(ctx context.Context, branch, head string, envs []*generator.Environment, batch []generator.Request, root string) (apprepo.Choice, error) {
	if s.o.App == nil {
		return apprepo.Choice{}, errors.New("parent detection needs the app repo (--app-repo)")
	}
	var cands []apprepo.Candidate
	for _, e := range envs {
		cands = append(cands, apprepo.Candidate{Branch: e.Branch, SHA: e.SHA})
	}
	for _, r := range batch {
		if r.Op == generator.OpSync && r.Branch != branch {
			cands = append(cands, apprepo.Candidate{Branch: r.Branch, SHA: r.SHA})
		}
	}
	return s.o.App.DetectParent(ctx, branch, head, cands, root)
}

// ReconcileResult says what a reconcile found.
type ReconcileResult struct {
	Created, Updated, Deleted []string
}

// ErrNoBranches: the app repo listing came back empty or failed; reconcile
// then changes nothing (an outage is not "every branch deleted").
var ErrNoBranches = errors.New("the app repo listed no branches: nothing reconciled")

// Reconcile lists the app repo's branches and queues what converges the
// environments to them: missing environments for wanted branches, new
// SHAs, and removal of environments whose branch is gone (never protected
// ones). It then applies the queue.
func (s *Server) Reconcile(ctx context.Context) (*ReconcileResult, error) {
	start := time.Now()
	defer func() { s.o.Metrics.ReconcileSeconds.Observe(time.Since(start).Seconds()) }()
	if s.o.App == nil {
		return nil, errors.New("reconcile needs the app repo (--app-repo)")
	}
	heads, err := s.o.App.Branches(ctx)
	if err != nil {
		return nil, fmt.Errorf("list app branches: %w (nothing reconciled)", err)
	}
	if len(heads) == 0 {
		return nil, ErrNoBranches
	}
	cfg, files, err := s.LoadConfig(ctx)
	if err != nil {
		return nil, err
	}
	envs, err := generator.ListEnvs(files)
	if err != nil {
		return nil, err
	}
	s.o.Metrics.Environments.Set(float64(len(envs)))
	res := &ReconcileResult{}
	have := map[string]bool{}
	for _, e := range envs {
		have[e.Branch] = true
		head, ok := heads[e.Branch]
		switch {
		case !ok && !e.Protected && !cfg.IsProtected(e.Branch):
			res.Deleted = append(res.Deleted, e.Branch)
			_ = s.Offer(webhook.Event{Source: "reconcile", Kind: webhook.KindDelete, Branch: e.Branch, Received: time.Now()})
		case ok && head != e.SHA:
			res.Updated = append(res.Updated, e.Branch)
			_ = s.Offer(webhook.Event{Source: "reconcile", Kind: webhook.KindSync, Branch: e.Branch, SHA: head, Received: time.Now()})
		}
	}
	var missing []string
	for b := range heads {
		if !have[b] && cfg.WantsBranch(b) {
			missing = append(missing, b)
		}
	}
	// The root first, then shorter names: parents tend to exist before children.
	sort.Slice(missing, func(i, j int) bool {
		if (missing[i] == cfg.Branches.Root) != (missing[j] == cfg.Branches.Root) {
			return missing[i] == cfg.Branches.Root
		}
		return missing[i] < missing[j]
	})
	for _, b := range missing {
		res.Created = append(res.Created, b)
		_ = s.Offer(webhook.Event{Source: "reconcile", Kind: webhook.KindSync, Branch: b, SHA: heads[b], Received: time.Now()})
	}
	return res, s.Flush(ctx)
}
