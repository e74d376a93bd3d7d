package argoapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	appfake "github.com/argoproj/argo-cd/v2/pkg/client/clientset/versioned/fake"
	applisters "github.com/argoproj/argo-cd/v2/pkg/client/listers/application/v1alpha1"
	repocache "github.com/argoproj/argo-cd/v2/reposerver/cache"
	servercache "github.com/argoproj/argo-cd/v2/server/cache"
	cacheutil "github.com/argoproj/argo-cd/v2/util/cache"
	"github.com/argoproj/argo-cd/v2/util/cache/appstate"
	argosettings "github.com/argoproj/argo-cd/v2/util/settings"
	argowebhook "github.com/argoproj/argo-cd/v2/util/webhook"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/offshoot-dev/offshoot/internal/argocd"
)

// appsLister lists the fake clientset's Applications (what the API server's
// informer would hold).
type appsLister struct {
	applisters.ApplicationLister
	applisters.ApplicationNamespaceLister
	cs *appfake.Clientset
	ns string
}

func (l *appsLister) Applications(ns string) applisters.ApplicationNamespaceLister {
	return &appsLister{cs: l.cs, ns: ns}
}

func (l *appsLister) List(sel labels.Selector) ([]*v1alpha1.Application, error) {
	list, err := l.cs.ArgoprojV1alpha1().Applications(l.ns).List(context.Background(), metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	out := make([]*v1alpha1.Application, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

type settingsSrc struct{}

func (settingsSrc) GetAppInstanceLabelKey() (string, error) { return "app.kubernetes.io/instance", nil }
func (settingsSrc) GetTrackingMethod() (string, error)      { return "annotation", nil }
func (settingsSrc) GetInstallationID() (string, error)      { return "", nil }

// generatePaths is the manifest-generate-paths annotation of offshoot's
// ApplicationSet template.
func generatePaths(t *testing.T) string {
	t.Helper()
	p := offshootAppSet(t).Spec.Template.Annotations[v1alpha1.AnnotationKeyManifestGeneratePaths]
	if p == "" {
		t.Fatal("offshoot's ApplicationSet template sets no manifest-generate-paths")
	}
	return p
}

// The push event offshoot sends $ARGOCD_WEBHOOK, run through Argo CD
// v2.14's own API-server webhook handler: only the Applications of the
// environments the commit changed are refreshed (offshoot's ApplicationSet
// gives each its manifest-generate-paths); the other environments' and
// another repo's are not.
func TestAPIServerWebhookRefreshesChangedEnvironments(t *testing.T) {
	const secret = "s3cr3t"
	paths := generatePaths(t)
	app := func(app, env, repo string) *v1alpha1.Application {
		return &v1alpha1.Application{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: "argocd",
				Annotations: map[string]string{v1alpha1.AnnotationKeyManifestGeneratePaths: paths}},
			Spec: v1alpha1.ApplicationSpec{
				Project:     "offshoot",
				Source:      &v1alpha1.ApplicationSource{RepoURL: repo, TargetRevision: "main", Path: "envs/" + env},
				Destination: v1alpha1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: app},
			},
		}
	}
	cs := appfake.NewSimpleClientset(
		app("shop-feature-a", "feature-a", envRepo), app("shop-feature-b", "feature-b", envRepo),
		app("shop-sentinel", "sentinel", envRepo),
		// The same path in another repo.
		app("other-feature-a", "feature-a", "http://127.0.0.1:8418/other-environments.git"),
	)
	mem := cacheutil.NewCache(cacheutil.NewInMemoryCache(time.Hour))
	h := argowebhook.NewHandler("argocd", nil, 1, cs, &appsLister{cs: cs},
		&argosettings.ArgoCDSettings{WebhookGitHubSecret: secret}, settingsSrc{},
		repocache.NewCache(mem, time.Minute, time.Minute, 10*time.Second),
		servercache.NewCache(appstate.NewCache(mem, time.Minute), time.Minute, time.Minute, time.Minute),
		nil, 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(h.Handler))
	defer srv.Close()

	hook := &argocd.Webhook{URL: srv.URL + "/api/webhook", Secret: secret}
	ctx := context.Background()
	before, after := "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	if err := hook.Notify(ctx, argocd.Push{RepoURL: envRepo, Branch: "main", Before: before, Commit: after, Paths: []string{"envs/feature-a"}}); err != nil {
		t.Fatal(err)
	}
	// One worker handles events in order: once the sentinel's event is
	// handled, the first one is too.
	if err := hook.Notify(ctx, argocd.Push{RepoURL: envRepo, Branch: "main", Before: after, Commit: "3333333333333333333333333333333333333333", Paths: []string{"envs/sentinel"}}); err != nil {
		t.Fatal(err)
	}
	refreshed := func(name string) bool {
		a, err := cs.ArgoprojV1alpha1().Applications("argocd").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return a.Annotations[v1alpha1.AnnotationKeyRefresh] != ""
	}
	for deadline := time.Now().Add(10 * time.Second); !refreshed("shop-sentinel"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Argo CD's webhook handler did not refresh the sentinel environment")
		}
	}
	if !refreshed("shop-feature-a") {
		t.Error("the changed environment's Application was not refreshed")
	}
	if refreshed("shop-feature-b") {
		t.Error("an unchanged environment's Application was refreshed")
	}
	if refreshed("other-feature-a") {
		t.Error("another repo's Application was refreshed")
	}
}
