package argocd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
)

// EnvStatus is one environment joined with its Application: the stable,
// documented shape of `offshoot status -o json`.
type EnvStatus struct {
	Branch      string `json:"branch"`
	Env         string `json:"env"`
	Application string `json:"application"` // = the env's namespace
	// SHA is the app commit in env.yaml; DeployedSHA the tag of the live
	// image when it is that commit (or the only live image's tag).
	SHA         string `json:"sha"`
	DeployedSHA string `json:"deployedSHA"`
	Sync        string `json:"sync"`
	Health      string `json:"health"`
	// Revision is the environments-repo commit Argo CD compared.
	Revision   string `json:"revision"`
	Operation  string `json:"operation,omitempty"`
	Message    string `json:"message,omitempty"`
	URL        string `json:"url"`
	PreviewURL string `json:"previewURL"`
	// Ready: Synced (and Healthy unless only synced is asked for),
	// generated for and running the committed SHA, no sync in progress.
	Ready bool `json:"ready"`
}

// ErrNotReady: environments were not ready (or did not get ready in time).
var ErrNotReady = errors.New("not ready")

// WaitOptions say what ready means and how long to wait for it.
type WaitOptions struct {
	// Watch waits (at most Timeout, polling every Interval) until every
	// environment is ready; without it the status is read once.
	Watch    bool
	Timeout  time.Duration
	Interval time.Duration
	// Refresh asks Argo CD to compare with git now (first read only).
	Refresh bool
	// SyncOnly: ready is Synced, not also Healthy.
	SyncOnly bool
	// Single reads each Application by name instead of listing them all.
	Single bool
	// Progress is called after each read that is not the last.
	Progress func(items []EnvStatus, ready int, elapsed time.Duration, err error)
}

// Wait reads the status of envs through c until every one is ready (with
// Watch) and returns the last statuses read. When some are not ready the
// error wraps ErrNotReady, naming them.
func Wait(ctx context.Context, c Client, envs []*generator.Environment, o WaitOptions) ([]EnvStatus, error) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	start := time.Now()
	refresh := o.Refresh
	var items []EnvStatus
	for {
		got, ferr := Statuses(ctx, c, envs, o.Single, refresh, o.SyncOnly)
		if ferr != nil && !o.Watch {
			return nil, ferr
		}
		if ferr == nil {
			items, refresh = got, false
		}
		ready := countReady(items)
		if !o.Watch || (ferr == nil && ready == len(items)) {
			break
		}
		if o.Progress != nil {
			o.Progress(items, ready, time.Since(start), ferr)
		}
		select {
		case <-ctx.Done():
		case <-time.After(o.Interval):
		}
		if ctx.Err() != nil {
			if items == nil {
				return nil, fmt.Errorf("gave up after %s: %w", o.Timeout, ferr)
			}
			break
		}
	}
	var waiting []string
	for _, it := range items {
		if !it.Ready {
			waiting = append(waiting, it.Branch)
		}
	}
	if len(waiting) == 0 {
		return items, nil
	}
	what := "Synced and Healthy"
	if o.SyncOnly {
		what = "Synced"
	}
	if o.Watch {
		return items, fmt.Errorf("%w: %d of %d environment(s) did not get %s within %s: %s", ErrNotReady, len(waiting), len(items), what, o.Timeout, strings.Join(waiting, ", "))
	}
	return items, fmt.Errorf("%w: %d of %d environment(s) are not %s at their committed SHA: %s", ErrNotReady, len(waiting), len(items), what, strings.Join(waiting, ", "))
}

func countReady(items []EnvStatus) int {
	n := 0
	for _, it := range items {
		if it.Ready {
			n++
		}
	}
	return n
}

// Statuses reads the Applications of envs: one List call, or one Get (a
// refreshing one with refresh) per env when single or refreshing.
func Statuses(ctx context.Context, c Client, envs []*generator.Environment, single, refresh, syncOnly bool) ([]EnvStatus, error) {
	byName := map[string]AppStatus{}
	if single || refresh {
		for _, e := range envs {
			var s *AppStatus
			var err error
			if refresh {
				s, err = c.Refresh(ctx, e.Namespace)
			} else {
				s, err = c.Get(ctx, e.Namespace)
			}
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			byName[s.Name] = *s
		}
	} else {
		apps, err := c.List(ctx, ManagedBySelector)
		if err != nil {
			return nil, err
		}
		for _, a := range apps {
			byName[a.Name] = a
		}
	}
	items := make([]EnvStatus, 0, len(envs))
	for _, e := range envs {
		it := EnvStatus{Branch: e.Branch, Env: e.Name, Application: e.Namespace, SHA: e.SHA, PreviewURL: e.URL, URL: c.AppURL(e.Namespace)}
		s, ok := byName[e.Namespace]
		if !ok {
			it.Sync, it.Health = "-", "-"
			it.Message = "no Application yet (the ApplicationSet has not generated it)"
			items = append(items, it)
			continue
		}
		it.Sync, it.Health, it.Revision, it.Operation, it.Message = s.Sync, s.Health, s.Revision, s.Operation, s.Message
		if s.Runs(e.SHA) {
			it.DeployedSHA = e.SHA
		} else {
			it.DeployedSHA = s.DeployedTag("")
		}
		if s.SHA != e.SHA && it.Message == "" {
			it.Message = fmt.Sprintf("the Application is still at %s: Argo CD has not read this commit of the environments repo yet", generator.ShortSHA(s.SHA))
		}
		it.Ready = s.Done(e.SHA, syncOnly)
		items = append(items, it)
	}
	return items, nil
}
