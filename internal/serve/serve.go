// Package serve is offshoot's event loop: webhook events are queued
// (bounded, coalesced per branch), and one worker hands each batch to the
// engine, which turns it into one commit of the environments repo. A
// periodic reconcile (the engine's, on the same worker) heals any event
// that was missed or lost in a crash. serve decides nothing the engine
// decides: it owns the intake, the queue, the worker, the retry of
// temporary failures and the metrics.
package serve

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"github.com/offshoot-dev/offshoot/internal/webhook"
)

// Options configure a Server.
type Options struct {
	// Engine applies the batches (required); its App, Reporter, PRs and
	// Notifier say what serve can do beyond committing.
	Engine *engine.Engine
	// Window is how long the worker waits after the first event of a batch
	// for more to coalesce (default 200ms).
	Window time.Duration
	// QueueSize bounds the number of branches waiting (default 10,000).
	QueueSize int
	// Retry paces a batch that failed temporarily (network, 5xx, a push
	// that kept losing races): exponential backoff with jitter; after
	// Retry.Attempts the batch is reported as failed and dropped (the next
	// reconcile converges it). A batch that failed for good (an invalid
	// offshoot.yaml, …) is reported and dropped at once.
	Retry   engine.Backoff
	Logger  *slog.Logger
	Metrics *Metrics
}

// Server queues events and applies them.
type Server struct {
	o        Options
	mu       sync.Mutex
	pending  map[string]webhook.Event // by branch: the latest event wins
	order    []string                 // branches in arrival order
	wake     chan struct{}
	warm     chan struct{} // closed once the worker has warmed up
	failures int           // consecutive temporary failures (worker only)
	// lastTemporary is the cause of the last request that failed temporarily.
	lastTemporary error
}

// New makes a Server.
func New(o Options) *Server {
	if o.Window <= 0 {
		o.Window = 200 * time.Millisecond
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
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
	s.poke()
	return nil
}

func (s *Server) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Filter is the webhook filter: the engine's Accept (offshoot.yaml's
// events section as last read).
func (s *Server) Filter(ev webhook.Event) (bool, string) {
	return s.o.Engine.Accept(engine.Intake{Source: ev.Source, Sync: ev.Kind == webhook.KindSync, Branch: ev.Branch, Labels: ev.Labels})
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
// Events offered meanwhile wait in the queue. Every reconcileEvery (0:
// never) the worker also reconciles.
func (s *Server) Run(ctx context.Context, reconcileEvery time.Duration) {
	s.warmUp(ctx)
	var tick <-chan time.Time
	if reconcileEvery > 0 && s.o.Engine.App != nil {
		s.reconcileLogged(ctx)
		t := time.NewTicker(reconcileEvery)
		defer t.Stop()
		tick = t.C
	}
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			s.drain()
			return
		case <-tick:
			s.reconcileLogged(ctx)
			continue
		case <-retry:
			retry = nil
		case <-s.wake:
			if retry != nil {
				continue // backing off: new events wait for the retry
			}
		}
		// Let a burst arrive, so that it becomes one commit.
		select {
		case <-ctx.Done():
			s.drain()
			return
		case <-time.After(s.o.Window):
		}
		if d, again := s.step(ctx); again {
			retry = time.After(d)
		}
	}
}

// step applies what is queued; again says a temporary failure wants a
// retry after d.
func (s *Server) step(ctx context.Context) (d time.Duration, again bool) {
	evs := s.take()
	if len(evs) == 0 {
		return 0, false
	}
	retry, err := s.process(ctx, evs)
	if err == nil && len(retry) > 0 {
		// Some requests failed for a passing reason (GitHub answering 5xx
		// to a pull request, say): those are retried like a failed batch.
		evs, err = retry, s.lastTemporary
	}
	switch {
	case err == nil:
		s.failures = 0
		return 0, false
	case ctx.Err() != nil:
		s.requeue(evs) // shutting down: the drain takes them
		return 0, false
	case !engine.IsTemporary(err):
		// The engine has reported it; trying again cannot help.
		s.failures = 0
		s.o.Metrics.Failures.WithLabelValues("terminal").Inc()
		s.count(evs, "failed")
		s.o.Logger.Error("batch failed; not retried (no retry can fix it): the next reconcile converges these branches once it is fixed",
			"events", len(evs), "error", err.Error())
		return 0, false
	}
	s.failures++
	s.o.Metrics.Failures.WithLabelValues("temporary").Inc()
	if s.o.Retry.GiveUp(s.failures) {
		s.o.Engine.ReportFailure(ctx, requests(evs), err)
		s.count(evs, "failed")
		s.o.Logger.Error("batch failed; giving up after retries: the next reconcile converges these branches",
			"events", len(evs), "attempts", s.failures, "error", err.Error())
		s.failures = 0
		return 0, false
	}
	s.requeue(evs)
	s.count(evs, "retry")
	d = s.o.Retry.Delay(s.failures)
	s.o.Logger.Warn("batch failed; will retry", "events", len(evs), "attempt", s.failures, "in_seconds", d.Seconds(), "error", err.Error())
	return d, true
}

func (s *Server) count(evs []webhook.Event, outcome string) {
	for _, ev := range evs {
		s.o.Metrics.Applied.WithLabelValues(ev.Source, outcome).Inc()
	}
}

func (s *Server) reconcileLogged(ctx context.Context) {
	res, err := s.Reconcile(ctx)
	if err != nil {
		s.o.Logger.Error("reconcile failed", "error", err.Error())
		return
	}
	s.o.Logger.Info("reconciled", "created", len(res.Created), "updated", len(res.Updated), "deleted", len(res.Deleted))
}

// Reconcile runs the engine's reconcile once, with serve's metrics and logs
// (tests; the worker does it every reconcile interval).
func (s *Server) Reconcile(ctx context.Context) (*engine.ReconcileResult, error) {
	start := time.Now()
	defer func() { s.o.Metrics.ReconcileSeconds.Observe(time.Since(start).Seconds()) }()
	res, err := s.o.Engine.Reconcile(ctx)
	if res != nil {
		s.o.Metrics.Environments.Set(float64(res.Environments))
		if res.Outcome != nil {
			s.observe(res.Outcome, start)
		}
	}
	return res, err
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
		retry, err := s.process(ctx, evs)
		switch {
		case err != nil && engine.IsTemporary(err):
			s.requeue(evs)
		case err == nil:
			s.requeue(retry)
		}
		if err != nil {
			s.o.Logger.Error("drain failed", "events", len(evs), "error", err.Error())
		}
	}
	if n := s.Pending(); n > 0 {
		s.o.Logger.Error("shutting down with events not applied; the next reconcile will converge them", "events", n)
	}
}

// Flush processes everything queued now (tests).
func (s *Server) Flush(ctx context.Context) error {
	evs := s.take()
	if len(evs) == 0 {
		return nil
	}
	retry, err := s.process(ctx, evs)
	if err != nil {
		if engine.IsTemporary(err) {
			s.requeue(evs)
		}
		return err
	}
	s.requeue(retry)
	return nil
}

// requests are the engine's requests for queued events.
func requests(evs []webhook.Event) []engine.Request {
	reqs := make([]engine.Request, 0, len(evs))
	for _, ev := range evs {
		r := engine.Request{Request: generator.Request{Op: generator.OpSync, Branch: ev.Branch, SHA: ev.SHA, Parent: ev.Parent},
			Source: ev.Source, Delivery: ev.Delivery, FromEvent: true}
		if ev.Kind == webhook.KindDelete {
			r.Op, r.SHA, r.Parent = generator.OpDelete, "", ""
		}
		reqs = append(reqs, r)
	}
	return reqs
}

// process hands a batch to the engine and records what became of it; retry
// are the events whose requests failed temporarily.
func (s *Server) process(ctx context.Context, evs []webhook.Event) (retry []webhook.Event, err error) {
	start := time.Now()
	out, err := s.o.Engine.Handle(ctx, requests(evs))
	if err != nil {
		return nil, err
	}
	s.observe(out, start)
	byBranch := map[string]webhook.Event{}
	for _, ev := range evs {
		byBranch[ev.Branch] = ev
	}
	for _, it := range out.Items {
		if engine.IsTemporary(it.Err) {
			retry = append(retry, byBranch[it.Request.Branch])
			s.lastTemporary = it.Err
		}
	}
	return retry, nil
}

// observe logs and counts what a batch did.
func (s *Server) observe(out *engine.Outcome, start time.Time) {
	s.o.Metrics.CommitSeconds.Observe(time.Since(start).Seconds())
	for _, it := range out.Items {
		r := it.Request
		s.o.Metrics.Applied.WithLabelValues(r.Source, it.Result()).Inc()
		switch {
		case it.Err != nil:
			s.o.Logger.Warn("event refused", "branch", r.Branch, "delivery", r.Delivery, "error", it.Err.Error())
		case it.Skipped != "":
			s.o.Logger.Info("event skipped", "branch", r.Branch, "delivery", r.Delivery, "reason", it.Skipped)
		case it.Review != nil && it.Review.PR != nil:
			s.o.Logger.Info("pull request", "branch", r.Branch, "pr", it.Review.PR.Number, "created", it.Review.Created, "pushed", it.Review.Pushed)
		}
	}
	s.o.Logger.Info("batch committed", "events", len(out.Items), "commit", out.Commit, "changed", out.Changed, "attempts", out.Attempts,
		"seconds", time.Since(start).Seconds(), "planning_seconds", out.Planning.Seconds())
}

// Engine is the engine the server feeds.
func (s *Server) Engine() *engine.Engine { return s.o.Engine }
