package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestScenario is issue 5's scenario on a real API server and Argo CD. See
// the README section "Argo CD status and e2e" and `make e2e`.
func TestScenario(t *testing.T) {
	mainRepo := mainRepoDir(t)
	t0 := time.Now()
	c := startCluster(t)
	fmt.Printf("e2e: etcd, redis, kube-apiserver, kube-controller-manager, git server up in %s\n", c.startupTime.Round(10*time.Millisecond))
	c.install(t, mainRepo)
	fmt.Printf("e2e: start-up from nothing to Argo CD ready with an API key: %s\n", time.Since(t0).Round(10*time.Millisecond))
	rep := &report{}
	defer rep.print(t, c)

	// 1. offshoot init, then offshoot's Argo CD manifests through an overlay.
	c.offshootT(t, "init", "--app", "shop", "--image", "ghcr.io/acme/shop")
	c.applyOffshootManifests(t, mainRepo)

	// 2. main, staging, feature_1.
	for _, s := range []struct{ branch, parent, sha string }{
		{"main", "", "1a2b3c4"}, {"staging", "main", "4d5e6f7"}, {"feature_1", "staging", "7a8b9c0"},
	} {
		args := []string{"sync", s.branch, "--sha", s.sha}
		if s.parent != "" {
			args = append(args, "--parent", s.parent)
		}
		rep.step(t, c, "create "+s.branch, s.branch, s.sha, true, args...)
	}
	envs := c.envs(t)
	for _, b := range []string{"main", "staging", "feature_1"} {
		c.checkEnv(t, envs[b])
	}
	if got, want := str(c.getJSON(t, "cluster.postgresql.cnpg.io", envs["feature_1"].Cluster, "-n", envs["feature_1"].Namespace),
		"spec", "externalClusters", 0, "plugin", "parameters", "serverName"), envs["staging"].ServerName; got != want {
		t.Errorf("feature_1's Cluster recovers from serverName %q, want staging's %q", got, want)
	}
	c.statusSmoke(t, rep)

	// 3. A new commit of feature_1: only its Deployment's image changes.
	before := c.snapshot(t, envs)
	rep.step(t, c, "new sha feature_1", "feature_1", "0f0f0f1", true, "sync", "feature_1", "--sha", "0f0f0f1")
	after := c.snapshot(t, envs)
	dep := "Deployment/" + envs["feature_1"].Namespace + "/" + appDeployment
	for k, v := range before {
		if k != dep && after[k] != v {
			t.Errorf("%s changed (%s → %s) with a new SHA of feature_1", k, v, after[k])
		}
	}
	if before[dep] == after[dep] {
		t.Errorf("%s did not change", dep)
	}
	if img := str(c.getJSON(t, "deployment.apps", appDeployment, "-n", envs["feature_1"].Namespace), "spec", "template", "spec", "containers", 0, "image"); img != "ghcr.io/acme/shop:0f0f0f1" {
		t.Errorf("feature_1 image %q", img)
	}

	// 4. delete feature_1: its Application and namespace go, nothing else changes.
	before = c.snapshot(t, map[string]envInfo{"main": envs["main"], "staging": envs["staging"]})
	f1 := envs["feature_1"]
	t0 = time.Now()
	if out := c.offshootEnvT(t, c.argoEnv(), "delete", "feature_1"); !strings.Contains(out, "asked Argo CD to refresh") {
		t.Fatalf("offshoot delete did not notify Argo CD:\n%s", out)
	}
	rep.notified++
	pushed := time.Since(t0)
	var gone time.Duration
	waitFor(t, "feature_1's Application and namespace deleted", 3*time.Minute, func() error {
		if c.getJSON(t, "application", f1.Namespace, "-n", "argocd") != nil {
			return fmt.Errorf("application %s still there", f1.Namespace)
		}
		if c.getJSON(t, "namespace", f1.Namespace) != nil {
			return fmt.Errorf("namespace %s still there", f1.Namespace)
		}
		gone = time.Since(t0) - pushed
		return nil
	})
	rep.add("delete feature_1 (Application + namespace gone)", gone)
	after = c.snapshot(t, map[string]envInfo{"main": envs["main"], "staging": envs["staging"]})
	if !reflect.DeepEqual(before, after) {
		t.Errorf("deleting feature_1 changed other envs:\nbefore %v\nafter  %v", before, after)
	}

	// 5. The git server goes down: errors, nothing deleted; back up: converges.
	c.outage(t, rep, envs)

	// 6. push → Synced latency, with and without a refresh request.
	c.latency(t, rep, envs)

	// Every notified commit reached Argo CD's ApplicationSet webhook, signed
	// correctly, and made the controller refresh offshoot's ApplicationSet.
	logb, err := os.ReadFile(c.components["argocd-applicationset-controller"].log.Name())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(logb), "offshoot-environments from webhook"); got < rep.notified {
		t.Errorf("the ApplicationSet controller logged %d webhook refreshes of offshoot-environments, want ≥ %d (one per notified commit)", got, rep.notified)
	} else {
		fmt.Printf("e2e: %d commits notified, %d ApplicationSet refreshes from the webhook\n", rep.notified, got)
	}
}

type envInfo struct {
	Branch, Name, Parent, SHA, Namespace, URL, Cluster, ServerName, ClonedFrom string
}

func (c *cluster) envs(t *testing.T) map[string]envInfo {
	var items []envInfo
	if err := json.Unmarshal([]byte(c.offshootT(t, "list", "-o", "json")), &items); err != nil {
		t.Fatal(err)
	}
	m := map[string]envInfo{}
	for _, e := range items {
		m[e.Branch] = e
	}
	return m
}

var commitRE = regexp.MustCompile(`\(commit ([0-9a-f]{7,40})\)`)

// step runs an offshoot command — with refresh, configured to notify Argo CD
// itself (c.argoEnv), as a user would — and measures from the end of the
// command (push and notification done) until the env's Application is Synced
// at the pushed commit with the Deployment running sha. The harness requests
// no refresh of its own here.
func (r *report) step(t *testing.T, c *cluster, label, branch, sha string, refresh bool, args ...string) time.Duration {
	t.Helper()
	var env []string
	if refresh {
		env = c.argoEnv()
	}
	return r.stepEnv(t, c, label, branch, sha, env, args...)
}

// stepEnv is step with offshoot's environment given: nil notifies nothing.
func (r *report) stepEnv(t *testing.T, c *cluster, label, branch, sha string, env []string, args ...string) time.Duration {
	t.Helper()
	refresh := env != nil
	out := c.offshootEnvT(t, env, args...)
	pushedAt := time.Now()
	m := commitRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("offshoot %v: no commit in output:\n%s", args, out)
	}
	if refresh {
		if !strings.Contains(out, "asked Argo CD to refresh") {
			t.Fatalf("offshoot %v did not notify Argo CD:\n%s", args, out)
		}
		r.mu.Lock()
		r.notified++
		r.mu.Unlock()
	}
	ns := c.namespaceOf(t, branch)
	d := c.waitSynced(t, ns, m[1], sha, pushedAt, 5*time.Minute)
	r.add(label, d)
	return d
}

func (c *cluster) namespaceOf(t *testing.T, branch string) string {
	e, ok := c.envs(t)[branch]
	if !ok {
		t.Fatalf("no env for %s", branch)
	}
	return e.Namespace
}

// refresh asks the ApplicationSet controller to read git now and, if app is
// set, the application controller to compare that Application now.
func (c *cluster) refresh(t testing.TB, app string) {
	c.kubectl(t, "annotate", "--overwrite", "-n", "argocd", "applicationset", "offshoot-environments", "argocd.argoproj.io/application-set-refresh=true")
	if app != "" {
		if _, err := c.kubectlErr("annotate", "--overwrite", "-n", "argocd", "application", app, "argocd.argoproj.io/refresh=normal"); err != nil &&
			!strings.Contains(err.Error(), "NotFound") && !strings.Contains(err.Error(), "not found") {
			t.Fatal(err)
		}
	}
}

// synced reports whether Application app is Synced at commit (or, with
// commit empty, at any revision) with sha deployed.
func (c *cluster) synced(t testing.TB, app, commit, sha string) error {
	a := c.getJSON(t, "application", app, "-n", "argocd")
	if a == nil {
		return fmt.Errorf("no application %s", app)
	}
	st := str(a, "status", "sync", "status")
	rev := str(a, "status", "sync", "revision")
	phase := str(a, "status", "operationState", "phase")
	if st != "Synced" || (commit != "" && !strings.HasPrefix(rev, commit)) || (phase != "" && phase != "Succeeded") || field(a, "operation") != nil {
		return fmt.Errorf("%s: sync %s at %s, operation %s", app, st, shortOf(rev), phase)
	}
	if got := str(a, "metadata", "annotations", "offshoot.dev/sha"); got != sha {
		return fmt.Errorf("%s: Application still generated for %s", app, got)
	}
	img := str(c.getJSON(t, "deployment.apps", appDeployment, "-n", app), "spec", "template", "spec", "containers", 0, "image")
	if !strings.HasSuffix(img, ":"+sha) {
		return fmt.Errorf("%s: image %s", app, img)
	}
	return nil
}

func (c *cluster) waitSynced(t testing.TB, app, commit, sha string, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	var d time.Duration
	waitFor(t, fmt.Sprintf("%s Synced at %s with %s", app, commit, sha), timeout, func() error {
		if err := c.synced(t, app, commit, sha); err != nil {
			return err
		}
		d = time.Since(since)
		return nil
	})
	return d
}

// checkEnv compares every object `offshoot render` builds for the env with
// the live one (the rendered fields must all be there, with the same
// values), and the Application's metadata with env.yaml.
func (c *cluster) checkEnv(t *testing.T, e envInfo) {
	out := c.offshootT(t, "render", e.Branch)
	kinds := map[string]bool{}
	for _, doc := range strings.Split(out, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var want map[string]any
		if err := yaml.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatalf("render %s: %v", e.Branch, err)
		}
		kind, name, ns := str(want, "kind"), str(want, "metadata", "name"), str(want, "metadata", "namespace")
		kinds[kind] = true
		res := strings.ToLower(kind)
		if gv := str(want, "apiVersion"); strings.Contains(gv, "/") {
			res += "." + gv[:strings.Index(gv, "/")]
		}
		args := []string{res, name}
		if ns != "" {
			args = append(args, "-n", ns)
		}
		got := c.getJSON(t, args...)
		if got == nil {
			t.Errorf("%s: %s %s/%s not in the cluster", e.Branch, kind, ns, name)
			continue
		}
		if diff := subset("", want, got); diff != "" {
			t.Errorf("%s: %s %s/%s differs from offshoot render: %s", e.Branch, kind, ns, name, diff)
		}
	}
	for _, k := range []string{"Namespace", "Deployment", "Service", "Ingress", "Cluster", "ObjectStore", "ScheduledBackup"} {
		if !kinds[k] {
			t.Errorf("%s: offshoot rendered no %s", e.Branch, k)
		}
	}
	a := c.getJSON(t, "application", e.Namespace, "-n", "argocd")
	for k, want := range map[string]string{
		"offshoot.dev/branch": e.Branch, "offshoot.dev/parent-branch": e.Parent, "offshoot.dev/sha": e.SHA,
		"link.argocd.argoproj.io/external-link": e.URL,
	} {
		if got := str(a, "metadata", "annotations", k); got != want {
			t.Errorf("Application %s: annotation %s = %q, want %q", e.Namespace, k, got, want)
		}
	}
	if got := str(a, "metadata", "labels", "offshoot.dev/env"); got != e.Name {
		t.Errorf("Application %s: label offshoot.dev/env = %q, want %q", e.Namespace, got, e.Name)
	}
	if got := str(c.getJSON(t, "cluster.postgresql.cnpg.io", e.Cluster, "-n", e.Namespace), "spec", "plugins", 0, "parameters", "serverName"); got != e.ServerName {
		t.Errorf("%s: Cluster archives into %q, want %q", e.Branch, got, e.ServerName)
	}
}

// subset returns "" when every field of want is in got with the same value.
func subset(path string, want, got any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: want an object, got %v", path, got)
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if d := subset(path+"."+k, w[k], g[k]); d != "" {
				return d
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: want %v, got %v", path, w, got)
		}
		for i := range w {
			if d := subset(path+"["+strconv.Itoa(i)+"]", w[i], g[i]); d != "" {
				return d
			}
		}
	default:
		if !reflect.DeepEqual(want, got) {
			return fmt.Sprintf("%s: want %v, got %v", path, want, got)
		}
	}
	return ""
}

// snapshot records, for every object of the envs, its generation (or
// resourceVersion for objects without one); the Deployment also its image.
func (c *cluster) snapshot(t *testing.T, envs map[string]envInfo) map[string]string {
	m := map[string]string{}
	for _, e := range envs {
		out := c.kubectl(t, "get", "-n", e.Namespace, "-o", "json",
			"deployments.apps,services,ingresses.networking.k8s.io,secrets,clusters.postgresql.cnpg.io,objectstores.barmancloud.cnpg.io,scheduledbackups.postgresql.cnpg.io")
		var list struct{ Items []map[string]any }
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatal(err)
		}
		ns := c.getJSON(t, "namespace", e.Namespace)
		list.Items = append(list.Items, ns)
		for _, o := range list.Items {
			key := str(o, "kind") + "/" + e.Namespace + "/" + str(o, "metadata", "name")
			if str(o, "kind") == "Namespace" {
				key = "Namespace/" + e.Namespace
			}
			v := fmt.Sprint(field(o, "metadata", "generation"))
			if v == "<nil>" {
				v = "rv" + str(o, "metadata", "resourceVersion")
			}
			m[key] = v
		}
	}
	return m
}

// statusSmoke runs `offshoot status` as a user would and keeps its output.
func (c *cluster) statusSmoke(t *testing.T, r *report) {
	env := c.argoEnv()
	ctx := context.Background()
	out, err := c.offshootCmd(ctx, env, "status", "--plaintext", "--until", "synced")
	r.statusOut = out
	writeFile(t, filepath.Join(c.logs, "offshoot-status.txt"), out)
	if err != nil {
		t.Errorf("offshoot status: %v\n%s", err, out)
	}
	if strings.Contains(out, c.argoToken) {
		t.Error("offshoot status printed the token")
	}
	for _, want := range []string{"main", "staging", "feature_1", "Synced", "/applications/argocd/shop-main"} {
		if !strings.Contains(out, want) {
			t.Errorf("offshoot status lacks %q:\n%s", want, out)
		}
	}
	// Strict mode: the Deployments cannot become Healthy without a kubelet.
	if out, err := c.offshootCmd(ctx, env, "status", "--plaintext", "main"); err == nil {
		t.Errorf("offshoot status (Healthy required) succeeded without a kubelet:\n%s", out)
	} else {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 4 {
			t.Errorf("offshoot status (Healthy required, not ready): %v, want exit code 4 (pending)\n%s", err, out)
		}
		r.statusStrict = out
	}
	out, err = c.offshootCmd(ctx, env, "status", "--plaintext", "-o", "json", "-w", "--until", "synced", "--timeout", "60s", "--refresh", "feature_1")
	if err != nil {
		t.Errorf("offshoot status -w feature_1: %v\n%s", err, out)
	}
	r.statusJSON = out
}

// outage stops the git server, checks that Argo CD reports it and deletes
// nothing, then starts it again and waits for everything to converge.
func (c *cluster) outage(t *testing.T, r *report, envs map[string]envInfo) {
	keep := map[string]envInfo{"main": envs["main"], "staging": envs["staging"]}
	before := c.snapshot(t, keep)
	c.gitServer.stop()
	t0 := time.Now()
	for _, e := range keep {
		c.refresh(t, e.Namespace)
	}
	waitFor(t, "ApplicationSet ErrorOccurred while git is down", 3*time.Minute, func() error {
		if r.outageAppSet = c.appSetError(t); r.outageAppSet != "" {
			return nil
		}
		return fmt.Errorf("no ErrorOccurred condition yet")
	})
	waitFor(t, "Applications report the git error", 3*time.Minute, func() error {
		for _, e := range keep {
			a := c.getJSON(t, "application", e.Namespace, "-n", "argocd")
			conds, _ := field(a, "status", "conditions").([]any)
			found := false
			for _, cd := range conds {
				if strings.HasSuffix(str(cd, "type"), "Error") {
					found = true
					r.outageApp = str(cd, "type") + ": " + str(cd, "message")
				}
			}
			if !found {
				c.refresh(t, e.Namespace)
				return fmt.Errorf("%s: no error condition yet", e.Namespace)
			}
		}
		return nil
	})
	r.add("git down → errors reported (ApplicationSet + Applications)", time.Since(t0))
	env := c.argoEnv()
	r.outageStatus, _ = c.offshootCmd(context.Background(), env, "status", "--plaintext", "--until", "synced")
	time.Sleep(envDuration("E2E_OUTAGE", 20*time.Second))
	for _, e := range keep {
		if c.getJSON(t, "application", e.Namespace, "-n", "argocd") == nil {
			t.Errorf("git outage: Application %s deleted", e.Namespace)
		}
	}
	if after := c.snapshot(t, keep); !reflect.DeepEqual(before, after) {
		t.Errorf("git outage changed objects:\nbefore %v\nafter  %v", before, after)
	}
	c.startGit(t, false)
	t1 := time.Now()
	for _, e := range keep {
		c.refresh(t, e.Namespace)
	}
	waitFor(t, "convergence after the outage", 5*time.Minute, func() error {
		if msg := c.appSetError(t); msg != "" {
			c.refresh(t, "")
			return fmt.Errorf("ApplicationSet: %s", msg)
		}
		for _, e := range keep {
			a := c.getJSON(t, "application", e.Namespace, "-n", "argocd")
			if st := str(a, "status", "sync", "status"); st != "Synced" {
				c.refresh(t, e.Namespace)
				return fmt.Errorf("%s: %s", e.Namespace, st)
			}
			conds, _ := field(a, "status", "conditions").([]any)
			for _, cd := range conds {
				if strings.HasSuffix(str(cd, "type"), "Error") {
					c.refresh(t, e.Namespace)
					return fmt.Errorf("%s: %s", e.Namespace, str(cd, "message"))
				}
			}
		}
		return nil
	})
	r.add("git up → converged (no errors, Synced)", time.Since(t1))
}

// appSetError is the message of offshoot's ApplicationSet's active
// ErrorOccurred condition ("" when it has none).
func (c *cluster) appSetError(t testing.TB) string {
	as := c.getJSON(t, "applicationset", "offshoot-environments", "-n", "argocd")
	conds, _ := field(as, "status", "conditions").([]any)
	for _, cd := range conds {
		if str(cd, "type") == "ErrorOccurred" && str(cd, "status") == "True" {
			return str(cd, "message")
		}
	}
	return ""
}

func envDuration(k string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(k)); err == nil {
		return d
	}
	return def
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return n
	}
	return def
}

// latency measures push → Synced: E2E_RUNS (default 5) new commits of
// staging with offshoot notifying Argo CD itself (ApplicationSet webhook +
// Application refresh), one after the other; as many with the two webhooks
// only (ApplicationSet controller's and API server's, no token: what the
// in-cluster serve does); then, without any notification
// or refresh (Argo CD's own polling: the Git generator every 3 minutes, the
// application controller's reconciliation timeout), E2E_RUNS new commits of
// as many envs, pushed E2E_STAGGER (default 37 s) apart so that they fall at
// different points of the polling cycles, measured concurrently.
func (c *cluster) latency(t *testing.T, r *report, envs map[string]envInfo) {
	runs := envInt("E2E_RUNS", 5)
	var with []time.Duration
	for i := 0; i < runs; i++ {
		sha := fmt.Sprintf("5%06x", i+1)
		with = append(with, r.step(t, c, fmt.Sprintf("refresh run %d (staging)", i+1), "staging", sha, true, "sync", "staging", "--sha", sha))
	}
	r.medianWith = median(with)
	// As the in-cluster serve does: the two webhooks, no API token.
	var hooks []time.Duration
	for i := 0; i < runs; i++ {
		sha := fmt.Sprintf("6%06x", i+1)
		hooks = append(hooks, r.stepEnv(t, c, fmt.Sprintf("webhooks-only run %d (staging)", i+1), "staging", sha, c.hooksEnv(), "sync", "staging", "--sha", sha))
	}
	r.medianHooks = median(hooks)
	if r.medianHooks > time.Minute {
		t.Errorf("median push → Synced with the webhooks only: %s; Argo CD's polling (3 min) rather than the API server's webhook", r.medianHooks)
	}
	if os.Getenv("E2E_SKIP_NO_REFRESH") != "" {
		return
	}
	// The envs for the runs without refresh exist first (created with refresh).
	branches := make([]string, runs)
	for i := range branches {
		branches[i] = fmt.Sprintf("poll-%d", i)
		r.step(t, c, "create "+branches[i], branches[i], "a000000", true, "sync", branches[i], "--parent", "main", "--sha", "a000000")
	}
	stagger := envDuration("E2E_STAGGER", 37*time.Second)
	var mu sync.Mutex
	var without []time.Duration
	var wg sync.WaitGroup
	for i, b := range branches {
		if i > 0 {
			time.Sleep(stagger)
		}
		sha := fmt.Sprintf("b%06x", i+1)
		out := c.offshootT(t, "sync", b, "--sha", sha)
		pushedAt := time.Now()
		if !commitRE.MatchString(out) {
			t.Fatalf("no commit in %s", out)
		}
		ns := c.namespaceOf(t, b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := pushedAt.Add(envDuration("E2E_POLL_TIMEOUT", 10*time.Minute))
			for time.Now().Before(deadline) {
				// Later pushes move the repo on: Argo CD may sync a newer
				// commit, so only the env's own SHA counts here.
				if err := c.synced(t, ns, "", sha); err == nil {
					d := time.Since(pushedAt)
					mu.Lock()
					without = append(without, d)
					r.add(fmt.Sprintf("no-refresh run %d (%s)", i+1, b), d)
					mu.Unlock()
					return
				}
				time.Sleep(time.Second)
			}
			t.Errorf("no-refresh run %d (%s): not Synced within the timeout", i+1, b)
		}()
	}
	wg.Wait()
	r.medianWithout = median(without)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type report struct {
	mu                        sync.Mutex
	rows                      []string
	medianWith, medianWithout time.Duration
	medianHooks               time.Duration // webhooks only, no API token
	statusOut, statusStrict   string
	statusJSON                string
	outageAppSet, outageApp   string
	outageStatus              string
	notified                  int // commits offshoot notified Argo CD of
}

func (r *report) add(label string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := fmt.Sprintf("%-60s %8.2fs", label, d.Seconds())
	r.rows = append(r.rows, line)
	fmt.Println("e2e: " + line)
}

func (r *report) print(t *testing.T, c *cluster) {
	var b strings.Builder
	fmt.Fprintf(&b, "push → Synced latency per step (from the end of offshoot's push):\n")
	for _, l := range r.rows {
		fmt.Fprintln(&b, "  "+l)
	}
	fmt.Fprintf(&b, "median push → Synced, offshoot notifying Argo CD: %.2fs\n", r.medianWith.Seconds())
	fmt.Fprintf(&b, "median push → Synced, webhooks only (as serve):  %.2fs\n", r.medianHooks.Seconds())
	if r.medianWithout > 0 {
		fmt.Fprintf(&b, "median push → Synced without (Argo CD polling):   %.2fs\n", r.medianWithout.Seconds())
	} else {
		fmt.Fprintf(&b, "median push → Synced without (Argo CD polling):   not measured (E2E_SKIP_NO_REFRESH)\n")
	}
	fmt.Fprintf(&b, "\noffshoot status (--until synced):\n%s\noffshoot status (Healthy required; no kubelet here):\n%s\noffshoot status -o json -w --refresh feature_1:\n%s\n",
		r.statusOut, r.statusStrict, r.statusJSON)
	fmt.Fprintf(&b, "git outage: ApplicationSet: %s\n            Application: %s\n            offshoot status: %s\n", r.outageAppSet, r.outageApp, r.outageStatus)
	fmt.Print(b.String())
	writeFile(t, filepath.Join(c.logs, "report.txt"), b.String())
}

// appDeployment is the Deployment of offshoot's scaffolded app base (base/app).
const appDeployment = "app"
