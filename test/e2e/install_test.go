package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient"
	accountpkg "github.com/argoproj/argo-cd/v2/pkg/apiclient/account"
	sessionpkg "github.com/argoproj/argo-cd/v2/pkg/apiclient/session"
	"golang.org/x/crypto/bcrypt"
)

// Versions whose CRDs are installed; they match offshoot's crdschema tests.
const (
	argoModule   = "github.com/argoproj/argo-cd/v2@v2.14.21"
	cnpgModule   = "github.com/cloudnative-pg/cloudnative-pg@v1.30.0"
	barmanModule = "github.com/cloudnative-pg/plugin-barman-cloud@v0.15.0"
)

// e2eClusterHealth is the e2e's one concession, applied after offshoot's
// own health patch: no CloudNativePG operator runs here, so no Cluster ever
// gets a status, and offshoot's real health check (Progressing: "Waiting for
// the operator") would hold back sync wave 0 (the app) forever. Here a
// Cluster that exists is Healthy. Real clusters keep offshoot's script.
const e2eClusterHealth = `hs = {}
hs.status = "Healthy"
hs.message = "e2e: no CloudNativePG operator runs here; the Cluster exists and was validated by the API server"
return hs
`

// e2eJobHealth is the same concession for offshoot's clone guard Jobs
// (wave -2, before each Cluster, and the adopt/retire Jobs): without a node
// no pod runs, so no Job completes. Here a Job that exists is Healthy; on
// a real node Argo CD's built-in Job health applies.
const e2eJobHealth = `hs = {}
hs.status = "Healthy"
hs.message = "e2e: no node runs pods here; the Job exists and was validated by the API server"
return hs
`

func moduleDir(t testing.TB, mod string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", mod).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", mod, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download %s: %v %s", mod, err, m.Error)
	}
	return m.Dir
}

// install puts Argo CD's CRDs and base config, the CNPG and barman-cloud
// CRDs, and the e2e's Argo CD settings into the cluster, then starts Argo CD.
func (c *cluster) install(t *testing.T, mainRepo string) {
	t0 := time.Now()
	argo := moduleDir(t, argoModule)
	c.kubectl(t, "create", "namespace", "argocd")
	c.kubectl(t, "apply", "--server-side", "-k", filepath.Join(argo, "manifests", "crds"))
	c.kubectl(t, "apply", "-n", "argocd", "-k", filepath.Join(argo, "manifests", "base", "config"))
	for _, m := range []string{cnpgModule, barmanModule} {
		c.kubectl(t, "apply", "--server-side", "-f", filepath.Join(moduleDir(t, m), "config", "crd", "bases"))
	}
	c.kubectl(t, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")

	// offshoot's health checks, the way its README says.
	c.kubectl(t, "patch", "configmap", "argocd-cm", "-n", "argocd", "--type", "merge",
		"--patch-file", filepath.Join(mainRepo, "manifests", "argocd-cm-health.yaml"))
	// The e2e concessions (see e2eClusterHealth, e2eJobHealth) unless a
	// real node and operator run (TestNode), and an account for offshoot status.
	data := map[string]string{"accounts.offshoot": "apiKey"}
	if !c.realHealth {
		data["resource.customizations.health.postgresql.cnpg.io_Cluster"] = e2eClusterHealth
		data["resource.customizations.health.batch_Job"] = e2eJobHealth
	}
	patch, _ := json.Marshal(map[string]any{"data": data})
	c.kubectl(t, "patch", "configmap", "argocd-cm", "-n", "argocd", "--type", "merge", "-p", string(patch))
	// offshoot status only needs to read the applications of project offshoot.
	patch, _ = json.Marshal(map[string]any{"data": map[string]string{
		"policy.csv": "p, role:offshoot-status, applications, get, offshoot/*, allow\ng, offshoot, role:offshoot-status\n",
	}})
	c.kubectl(t, "patch", "configmap", "argocd-rbac-cm", "-n", "argocd", "--type", "merge", "-p", string(patch))
	c.adminPassword = randHex(12)
	c.hookSecret = randHex(16)
	hash, err := bcrypt.GenerateFromPassword([]byte(c.adminPassword), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	patch, _ = json.Marshal(map[string]any{"stringData": map[string]string{
		"admin.password": string(hash), "admin.passwordMtime": time.Now().UTC().Format(time.RFC3339),
		"server.secretkey": randHex(32),
		// offshoot signs the push events it sends the ApplicationSet webhook.
		"webhook.github.secret": c.hookSecret,
	}})
	c.kubectl(t, "patch", "secret", "argocd-secret", "-n", "argocd", "--type", "merge", "-p", string(patch))
	// The environments repo, registered as a repository (no credentials needed).
	repoSecret := fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: repo-shop-environments
  namespace: argocd
  labels: {argocd.argoproj.io/secret-type: repository}
stringData:
  type: git
  url: %s
`, c.repoURL())
	if out, err := c.kubectlIn([]byte(repoSecret), "apply", "-f", "-"); err != nil {
		t.Fatalf("repository secret: %v %s", err, out)
	}
	fmt.Printf("e2e: CRDs and Argo CD config installed in %s\n", time.Since(t0).Round(10*time.Millisecond))
	c.startArgoCD(t)
	c.argoToken = c.apiKey(t)
}

// apiKey logs in as admin and creates an API key for account offshoot, the
// way `argocd account generate-token --account offshoot` does.
func (c *cluster) apiKey(t *testing.T) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server := fmt.Sprintf("127.0.0.1:%d", c.argoPort)
	admin, err := apiclient.NewClient(&apiclient.ClientOptions{ServerAddr: server, PlainText: true, AuthToken: "none"})
	if err != nil {
		t.Fatal(err)
	}
	closer, sessions, err := admin.NewSessionClient()
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	var sess *sessionpkg.SessionResponse
	waitFor(t, "argocd admin login", time.Minute, func() error {
		sess, err = sessions.Create(ctx, &sessionpkg.SessionCreateRequest{Username: "admin", Password: c.adminPassword})
		return err
	})
	client, err := apiclient.NewClient(&apiclient.ClientOptions{ServerAddr: server, PlainText: true, AuthToken: sess.Token})
	if err != nil {
		t.Fatal(err)
	}
	closer2, accounts, err := client.NewAccountClient()
	if err != nil {
		t.Fatal(err)
	}
	defer closer2.Close()
	var tok *accountpkg.CreateTokenResponse
	waitFor(t, "argocd account offshoot token", time.Minute, func() error {
		tok, err = accounts.CreateToken(ctx, &accountpkg.CreateTokenRequest{Name: "offshoot", Id: "e2e"})
		return err
	})
	return tok.Token
}

// applyOffshootManifests applies manifests/argocd through an overlay that
// sets the environments repo, as manifests/README.md tells users to.
func (c *cluster) applyOffshootManifests(t *testing.T, mainRepo string) {
	overlay := filepath.Join(c.dir, "argocd-overlay")
	rel, err := filepath.Rel(overlay, filepath.Join(mainRepo, "manifests", "argocd"))
	if err != nil {
		t.Fatal(err)
	}
	url := c.repoURL()
	writeFile(t, filepath.Join(overlay, "kustomization.yaml"), fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
patches:
  - target: {group: argoproj.io, kind: AppProject, name: offshoot}
    patch: |-
      - {op: replace, path: /spec/sourceRepos/0, value: %s}
  - target: {group: argoproj.io, kind: ApplicationSet, name: offshoot-environments}
    patch: |-
      - {op: replace, path: /spec/generators/0/git/repoURL, value: %s}
      - {op: replace, path: /spec/template/spec/source/repoURL, value: %s}
`, rel, url, url, url))
	c.kubectl(t, "apply", "-k", overlay)
}

func mainRepoDir(t testing.TB) string {
	d := abs(t, filepath.Join("..", ".."))
	if _, err := os.Stat(filepath.Join(d, "manifests", "argocd", "applicationset.yaml")); err != nil {
		t.Fatalf("not in offshoot's test/e2e: %v", err)
	}
	return d
}

func shortOf(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
