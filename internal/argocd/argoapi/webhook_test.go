package argoapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsetwebhook "github.com/argoproj/argo-cd/v2/applicationset/webhook"
	"github.com/argoproj/argo-cd/v2/common"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	argosettings "github.com/argoproj/argo-cd/v2/util/settings"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/internal/argocd"
)

const envRepo = "http://127.0.0.1:8418/shop-environments.git"

// appSetHandler runs Argo CD v2.14's own ApplicationSet webhook handler over
// offshoot's ApplicationSet (manifests/argocd/applicationset.yaml, pointed at
// envRepo) and an unrelated one, with secret as argocd-secret's
// webhook.github.secret.
// offshootAppSet is offshoot's ApplicationSet, manifests/argocd/applicationset.yaml.
func offshootAppSet(t *testing.T) *v1alpha1.ApplicationSet {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "manifests", "argocd", "applicationset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var as v1alpha1.ApplicationSet
	if err := yaml.Unmarshal(raw, &as); err != nil {
		t.Fatal(err)
	}
	return &as
}

func appSetHandler(t *testing.T, secret string) (*httptest.Server, client.Client) {
	t.Helper()
	ours := offshootAppSet(t)
	ours.Namespace = "argocd"
	if ours.Spec.Generators[0].Git == nil {
		t.Fatal("manifests/argocd/applicationset.yaml: first generator is not a Git generator")
	}
	ours.Spec.Generators[0].Git.RepoURL = envRepo
	other := ours.DeepCopy()
	other.Name = "someone-else"
	other.Spec.Generators[0].Git.RepoURL = "http://127.0.0.1:8418/other-environments.git"

	scheme := kruntime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	fc := ctrlfake.NewClientBuilder().WithScheme(scheme).WithObjects(ours, other).Build()
	part := map[string]string{"app.kubernetes.io/part-of": "argocd"}
	kube := kubefake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: common.ArgoCDConfigMapName, Namespace: "argocd", Labels: part}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: common.ArgoCDSecretName, Namespace: "argocd", Labels: part},
			Data: map[string][]byte{"server.secretkey": []byte("k"), "webhook.github.secret": []byte(secret)}})
	h, err := appsetwebhook.NewWebhookHandler("argocd", 1, argosettings.NewSettingsManager(context.Background(), kube, "argocd"), fc, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(h.Handler))
	t.Cleanup(srv.Close)
	return srv, fc
}

func refreshRequested(t *testing.T, fc client.Client, name string) bool {
	t.Helper()
	var as v1alpha1.ApplicationSet
	if err := fc.Get(context.Background(), client.ObjectKey{Namespace: "argocd", Name: name}, &as); err != nil {
		t.Fatal(err)
	}
	return as.Annotations[common.AnnotationApplicationSetRefresh] == "true"
}

// A signed push event for the environments repo makes Argo CD's handler
// request a refresh of offshoot's ApplicationSet, and of no other.
func TestWebhookRefreshesOurApplicationSet(t *testing.T) {
	srv, fc := appSetHandler(t, "s3cret")
	w := &argocd.Webhook{URL: srv.URL + "/api/webhook", Secret: "s3cret", UserAgent: "offshoot/test"}
	if err := w.Notify(context.Background(), argocd.Push{RepoURL: envRepo, Branch: "main", Commit: strings.Repeat("a", 40)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !refreshRequested(t, fc, "offshoot-environments") {
		if time.Now().After(deadline) {
			t.Fatal("offshoot-environments was not asked to refresh")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if refreshRequested(t, fc, "someone-else") {
		t.Error("an ApplicationSet over another repo was refreshed too")
	}
}

// Another branch than the generator's revision refreshes nothing; a wrong
// secret is refused by Argo CD and reported, not retried.
func TestWebhookWrongBranchOrSecret(t *testing.T) {
	srv, fc := appSetHandler(t, "s3cret")
	w := &argocd.Webhook{URL: srv.URL + "/api/webhook", Secret: "s3cret"}
	if err := w.Notify(context.Background(), argocd.Push{RepoURL: envRepo, Branch: "offshoot/shop-main", Commit: strings.Repeat("b", 40)}); err != nil {
		t.Fatal(err)
	}
	bad := &argocd.Webhook{URL: srv.URL + "/api/webhook", Secret: "wrong"}
	err := bad.Notify(context.Background(), argocd.Push{RepoURL: envRepo, Branch: "main", Commit: strings.Repeat("c", 40)})
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "HMAC") {
		t.Fatalf("wrong secret: err = %v, want Argo CD's 400 HMAC verification failure", err)
	}
	time.Sleep(300 * time.Millisecond) // the handler's worker is asynchronous
	if refreshRequested(t, fc, "offshoot-environments") {
		t.Error("refreshed on a push to another branch or with a wrong signature")
	}
}

// 5xx (Argo CD's "queue is full") is retried; 4xx is not.
func TestWebhookRetries(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "Queue is full, discarding webhook payload", http.StatusServiceUnavailable)
			return
		}
	}))
	defer srv.Close()
	w := &argocd.Webhook{URL: srv.URL, Attempts: 3}
	if err := w.Notify(context.Background(), argocd.Push{RepoURL: envRepo, Branch: "main", Commit: "abc"}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Fatalf("%d calls, want 3", calls.Load())
	}
	calls.Store(0)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "nope", http.StatusForbidden)
	})
	if err := w.Notify(context.Background(), argocd.Push{RepoURL: envRepo, Branch: "main", Commit: "abc"}); err == nil || calls.Load() != 1 {
		t.Fatalf("403: err %v after %d calls, want an error after 1", err, calls.Load())
	}
}

func TestWebURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://github.com/acme/shop-environments.git":     "https://github.com/acme/shop-environments",
		"https://x-access-token:t0k@github.com/acme/e.git/": "https://github.com/acme/e",
		"http://127.0.0.1:8418/shop-environments.git":       "http://127.0.0.1:8418/shop-environments",
		"ssh://git@git.example.com:2222/team/envs.git":      "https://git.example.com/team/envs",
		"git@github.com:acme/shop-environments.git":         "https://github.com/acme/shop-environments",
	} {
		got, err := argocd.WebURL(in)
		if err != nil || got != want {
			t.Errorf("WebURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"/srv/git/envs", "file:///srv/git/envs.git", "https://github.com", "./envs"} {
		if got, err := argocd.WebURL(bad); err == nil {
			t.Errorf("WebURL(%q) = %q, want an error", bad, got)
		}
	}
}
