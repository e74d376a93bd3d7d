package argoapi

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/gitops-engine/pkg/health"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"

	"github.com/offshoot-dev/offshoot/internal/argocd"
)

func app(mut func(a *v1alpha1.Application)) *v1alpha1.Application {
	a := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "shop-feature-1-94cc62",
			Namespace: "argocd",
			Labels: map[string]string{
				argocd.LabelManagedBy: "offshoot",
				argocd.LabelEnv:       "feature-1-94cc62",
			},
			Annotations: map[string]string{
				argocd.AnnotationBranch:  "feature_1",
				argocd.AnnotationParent:  "staging",
				argocd.AnnotationSHA:     "7a8b9c0",
				argocd.AnnotationExtLink: "https://feature-1-94cc62.shop.example.com",
			},
		},
		Status: v1alpha1.ApplicationStatus{
			Sync:    v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusCodeSynced, Revision: "0123456789abcdef0123456789abcdef01234567"},
			Health:  v1alpha1.HealthStatus{Status: health.HealthStatusHealthy},
			Summary: v1alpha1.ApplicationSummary{Images: []string{"ghcr.io/acme/shop:7a8b9c0"}},
			OperationState: &v1alpha1.OperationState{
				Phase:      synccommon.OperationSucceeded,
				Message:    "successfully synced (all tasks run)",
				FinishedAt: &metav1.Time{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
			},
			ReconciledAt: &metav1.Time{Time: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)},
		},
	}
	if mut != nil {
		mut(a)
	}
	return a
}

func TestFromApplicationHealthy(t *testing.T) {
	s := FromApplication(app(nil), "https://argocd.example.com")
	want := argocd.AppStatus{
		Name: "shop-feature-1-94cc62", Env: "feature-1-94cc62", Branch: "feature_1", Parent: "staging",
		SHA: "7a8b9c0", Sync: "Synced", Health: "Healthy", Revision: "0123456789abcdef0123456789abcdef01234567",
		Images: []string{"ghcr.io/acme/shop:7a8b9c0"}, Operation: "Succeeded",
		URL:        "https://argocd.example.com/applications/argocd/shop-feature-1-94cc62",
		PreviewURL: "https://feature-1-94cc62.shop.example.com",
	}
	if s.ReconciledAt == nil || !s.ReconciledAt.Equal(time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)) {
		t.Errorf("ReconciledAt = %v", s.ReconciledAt)
	}
	s.ReconciledAt = nil
	if !equal(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	if !s.Done("7a8b9c0", false) {
		t.Error("Done(7a8b9c0) = false, want true")
	}
	if s.Done("0f0f0f1", false) {
		t.Error("Done(other sha) = true: the new commit is not deployed yet")
	}
	if s.Failed() {
		t.Error("Failed() = true")
	}
	if got := s.DeployedTag("ghcr.io/acme/shop"); got != "7a8b9c0" {
		t.Errorf("DeployedTag = %q", got)
	}
}

func TestFromApplicationFailing(t *testing.T) {
	s := FromApplication(app(func(a *v1alpha1.Application) {
		a.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
		a.Status.Health.Status = health.HealthStatusProgressing
		a.Status.Conditions = []v1alpha1.ApplicationCondition{
			{Type: v1alpha1.ApplicationConditionComparisonError, Message: "Failed to load target state:\n  rpc error: connection refused"},
			{Type: v1alpha1.ApplicationConditionSharedResourceWarning, Message: "not an error"},
		}
		a.Status.OperationState.Phase = synccommon.OperationFailed
		a.Status.OperationState.Message = "one or more objects failed to apply"
		a.Status.Resources = []v1alpha1.ResourceStatus{
			{Kind: "Deployment", Name: "shop", Health: &v1alpha1.HealthStatus{Status: health.HealthStatusProgressing, Message: "Waiting for rollout to finish: 0 of 1 updated replicas are available..."}},
			{Kind: "Service", Name: "shop", Health: &v1alpha1.HealthStatus{Status: health.HealthStatusHealthy}},
		}
	}), "http://127.0.0.1:8080")
	for _, want := range []string{
		"ComparisonError: Failed to load target state: rpc error: connection refused",
		"Failed: one or more objects failed to apply",
		"Deployment shop: Progressing: Waiting for rollout",
	} {
		if !strings.Contains(s.Message, want) {
			t.Errorf("Message %q lacks %q", s.Message, want)
		}
	}
	if strings.Contains(s.Message, "not an error") || strings.Contains(s.Message, "Service") {
		t.Errorf("Message %q has warnings or healthy resources", s.Message)
	}
	if !s.Failed() || s.Done("", true) {
		t.Errorf("Failed = %v, Done = %v", s.Failed(), s.Done("", true))
	}
	if s.URL != "http://127.0.0.1:8080/applications/argocd/shop-feature-1-94cc62" {
		t.Errorf("URL = %q", s.URL)
	}
}

func TestFromApplicationNew(t *testing.T) {
	s := FromApplication(app(func(a *v1alpha1.Application) {
		a.Status = v1alpha1.ApplicationStatus{}
		a.Operation = &v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{}}
	}), "https://a")
	if s.Sync != "Unknown" || s.Health != "Unknown" || s.Operation != argocd.PhaseRunning || s.Message != "" || s.ReconciledAt != nil {
		t.Errorf("got %+v", s)
	}
	if s.Done("", true) {
		t.Error("an Application with a pending operation is not done")
	}
}

func TestDoneSyncOnly(t *testing.T) {
	s := FromApplication(app(func(a *v1alpha1.Application) {
		a.Status.Health.Status = health.HealthStatusProgressing
	}), "https://a")
	if s.Done("7a8b9c0", false) || !s.Done("7a8b9c0", true) {
		t.Errorf("Done(healthy) = %v, Done(syncOnly) = %v", s.Done("7a8b9c0", false), s.Done("7a8b9c0", true))
	}
	s.SHA = "0f0f0f1" // the ApplicationSet has not caught up
	if s.Done("7a8b9c0", true) {
		t.Error("Done with a stale offshoot.dev/sha")
	}
}

func TestDeployedTag(t *testing.T) {
	s := argocd.AppStatus{Images: []string{"localhost:5000/acme/shop:abc", "postgres:16@sha256:deadbeef", "busybox"}}
	for repo, want := range map[string]string{"localhost:5000/acme/shop": "abc", "postgres": "16", "busybox": "", "": ""} {
		if got := s.DeployedTag(repo); got != want {
			t.Errorf("DeployedTag(%q) = %q, want %q", repo, got, want)
		}
	}
	if !s.Runs("abc") || s.Runs("5000/acme/shop:abc") {
		t.Error("Runs")
	}
}

func TestNewNeedsServerAndToken(t *testing.T) {
	if _, err := New(argocd.Options{Token: "t"}); err == nil || !strings.Contains(err.Error(), "ARGOCD_SERVER") {
		t.Errorf("no server: %v", err)
	}
	if _, err := New(argocd.Options{Server: "127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "ARGOCD_AUTH_TOKEN") {
		t.Errorf("no token: %v", err)
	}
}

// An unreachable server fails with an error, and the token never shows in it.
func TestUnreachableServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		c, err := New(argocd.Options{Server: "127.0.0.1:1", Token: "s3cr3t-token", PlainText: true})
		if err == nil {
			_, err = c.List(ctx, "")
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("no error from an unreachable server")
		}
		if strings.Contains(err.Error(), "s3cr3t-token") {
			t.Errorf("error shows the token: %v", err)
		}
		if errors.Is(err, argocd.ErrNotFound) {
			t.Errorf("unreachable reported as not found: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("timed out")
	}
}

func equal(a, b argocd.AppStatus) bool { return reflect.DeepEqual(a, b) }
