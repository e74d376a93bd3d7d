package argocd

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
)

// fakeClient is an Argo CD whose Applications become ready after a number
// of reads.
type fakeClient struct {
	mu        sync.Mutex
	reads     int
	readyFrom int // the read from which the Application is Synced and Healthy
}

func (c *fakeClient) status() AppStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	s := AppStatus{Name: "shop-main", SHA: "1111111", Sync: "OutOfSync", Health: "Progressing", Images: []string{"ghcr.io/acme/shop:1111111"}}
	if c.readyFrom > 0 && c.reads >= c.readyFrom {
		s.Sync, s.Health = SyncSynced, HealthHealthy
	}
	return s
}

func (c *fakeClient) List(context.Context, string) ([]AppStatus, error) {
	return []AppStatus{c.status()}, nil
}
func (c *fakeClient) Get(context.Context, string) (*AppStatus, error) {
	s := c.status()
	return &s, nil
}
func (c *fakeClient) Refresh(ctx context.Context, name string) (*AppStatus, error) {
	return c.Get(ctx, name)
}
func (c *fakeClient) AppURL(name string) string {
	return "https://argocd.example/applications/argocd/" + name
}
func (c *fakeClient) Close() error { return nil }

var mainEnv = []*generator.Environment{{Branch: "main", Name: "main", Namespace: "shop-main", SHA: "1111111"}}

// Not ready is its own error (the CLI's exit code 4), with and without
// waiting; ready after a few reads is success.
func TestWaitReadiness(t *testing.T) {
	ctx := context.Background()
	items, err := Wait(ctx, &fakeClient{}, mainEnv, WaitOptions{})
	if !errors.Is(err, ErrNotReady) || len(items) != 1 || items[0].Ready {
		t.Fatalf("once, not ready: %v %+v", err, items)
	}
	items, err = Wait(ctx, &fakeClient{}, mainEnv, WaitOptions{Watch: true, Timeout: 50 * time.Millisecond, Interval: 5 * time.Millisecond})
	if !errors.Is(err, ErrNotReady) || len(items) != 1 {
		t.Fatalf("watch, timed out: %v %+v", err, items)
	}
	progress := 0
	c := &fakeClient{readyFrom: 3}
	items, err = Wait(ctx, c, mainEnv, WaitOptions{Watch: true, Timeout: 5 * time.Second, Interval: time.Millisecond,
		Progress: func([]EnvStatus, int, time.Duration, error) { progress++ }})
	if err != nil || !items[0].Ready || items[0].DeployedSHA != "1111111" {
		t.Fatalf("watch, ready on the 3rd read: %v %+v", err, items)
	}
	if progress != 2 {
		t.Fatalf("%d progress calls, want 2 (one per read that was not the last)", progress)
	}
	// Synced is enough with SyncOnly.
	if _, err := Wait(ctx, &fakeClient{readyFrom: 1}, mainEnv, WaitOptions{SyncOnly: true}); err != nil {
		t.Fatal(err)
	}
}
