package clone_test

import (
	"bufio"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/clone"
	"github.com/offshoot-dev/offshoot/internal/crdschema"
)

func wave(t *testing.T, ann map[string]string) int {
	t.Helper()
	var w int
	if _, err := fmt.Sscanf(ann[clone.SyncWaveAnnotation], "%d", &w); err != nil {
		t.Fatalf("no sync wave in %v", ann)
	}
	return w
}

// The guard is an Argo CD Sync hook in a wave after the object stores and
// credentials and before the Cluster, named per generation, and it can
// read nothing but its own Cluster.
func TestGuardShape(t *testing.T) {
	child, err := clone.Build(settings(), childSpec())
	if err != nil {
		t.Fatal(err)
	}
	g := child.Guard
	j := g.Job
	if !strings.HasPrefix(j.Metadata.Name, "feature-1-pg1-guard-") || len(j.Metadata.Name) != len("feature-1-pg1-guard-")+5 {
		t.Fatalf("guard Job %q: its name must carry the Cluster's generation and a hash of its spec", j.Metadata.Name)
	}
	if _, hook := j.Metadata.Annotations[clone.HookAnnotation]; hook {
		t.Fatal("the guard must be an ordinary resource: Argo CD's self-heal (a partial sync) runs no hooks")
	}
	a := g.Adopt
	_, hook := a.Metadata.Annotations[clone.HookAnnotation]
	if !strings.HasPrefix(a.Metadata.Name, "feature-1-pg1-adopt-") || hook || wave(t, a.Metadata.Annotations) != wave(t, child.Cluster.Metadata.Annotations) {
		t.Fatalf("adopt Job: an ordinary Job in the Cluster's wave, run once per generation: %+v", a.Metadata)
	}
	var adoptsGuard bool
	for _, e := range a.Spec.Template.Spec.Containers[0].Env {
		adoptsGuard = adoptsGuard || (e.Name == "GUARD_JOB" && e.Value == j.Metadata.Name)
	}
	if !adoptsGuard {
		t.Fatal("the adopt Job must name the guard Job")
	}
	// Another spec (here: image) is another Job: a Job's template is immutable.
	s2 := settings()
	s2.CloneGuard.Image = "registry.local/tools:2"
	other, _ := clone.Build(s2, childSpec())
	if other.Guard.Job.Metadata.Name == j.Metadata.Name {
		t.Fatal("a changed guard spec must get a new Job name")
	}
	jw, cw := wave(t, j.Metadata.Annotations), wave(t, child.Cluster.Metadata.Annotations)
	for _, before := range []map[string]string{child.Archive.Metadata.Annotations, child.ParentArchive.Metadata.Annotations,
		g.ServiceAccount.Metadata.Annotations, g.Role.Metadata.Annotations, g.RoleBinding.Metadata.Annotations} {
		if wave(t, before) >= jw {
			t.Fatalf("stores, credentials and RBAC (wave %d) must come before the guard (wave %d)", wave(t, before), jw)
		}
	}
	if jw >= cw {
		t.Fatalf("guard wave %d must be before the Cluster's %d", jw, cw)
	}
	if wave(t, child.ScheduledBackup.Metadata.Annotations) <= cw {
		t.Fatal("the ScheduledBackup must come after the Cluster")
	}
	env := map[string]string{}
	c := j.Spec.Template.Spec.Containers[0]
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	want := map[string]string{
		"GUARD_CLUSTER": "feature-1-pg1", "GUARD_SERVER_NAME": "feature-1-20261126t090100z-0123",
		"GUARD_PARENT_SERVER_NAME": "staging-20261126t090000z-beef", "GUARD_PARENT_BRANCH": "staging",
		"GUARD_TARGET_TIME": "2026-11-20T10:00:00Z", "GUARD_DESTINATION_PATH": "s3://backups/offshoot",
		"GUARD_ENDPOINT_URL": "http://minio:9000", "GUARD_SECRET_NAME": "offshoot-backup-credentials",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("guard env %s = %q, want %q", k, env[k], v)
		}
	}
	if c.Image != clone.DefaultGuardImage || strings.Join(c.Command, " ") != "python3 /guard/guard.py" {
		t.Fatalf("guard container: %s %v", c.Image, c.Command)
	}
	if g.Script.Metadata.Name != clone.GuardName || g.Script.Data["guard.py"] != clone.GuardScript() || wave(t, g.Script.Metadata.Annotations) >= jw {
		t.Fatalf("the script ConfigMap must hold guard.py and come before the guard: %+v", g.Script.Metadata)
	}
	var mounted bool
	for _, v := range j.Spec.Template.Spec.Volumes {
		mounted = mounted || (v.ConfigMap != nil && v.ConfigMap.Name == clone.GuardName)
	}
	if !mounted {
		t.Fatal("the guard must mount the script ConfigMap")
	}
	if *j.Spec.ActiveDeadlineSeconds != int64(clone.DefaultGuardTimeout/time.Second) {
		t.Fatalf("deadline %d", *j.Spec.ActiveDeadlineSeconds)
	}
	r := j.Spec.PodFailurePolicy.Rules[0]
	if r.Action != "FailJob" || r.OnExitCodes.Values[0] != clone.GuardRefusedExitCode {
		t.Fatalf("a refusal must fail the Job at once: %+v", r)
	}
	var credVol bool
	for _, v := range j.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "offshoot-backup-credentials" && *v.Secret.Optional {
			credVol = true
		}
	}
	if !credVol {
		t.Fatal("the credentials must be an optional Secret volume, so the guard can wait for a replicator to fill it")
	}
	rule := g.Role.Rules[0]
	if strings.Join(rule.Verbs, ",") != "get" || strings.Join(rule.ResourceNames, ",") != "feature-1-pg1" || rule.Resources[0] != "clusters" {
		t.Fatalf("the guard may only get its own Cluster: %+v", rule)
	}
	if rule := g.Role.Rules[1]; strings.Join(rule.Verbs, ",") != "get,patch" || strings.Join(rule.ResourceNames, ",") != j.Metadata.Name+","+a.Metadata.Name || rule.Resources[0] != "jobs" {
		t.Fatalf("the guard may only patch its own Job: %+v", rule)
	}
	if len(g.Role.Rules) != 2 {
		t.Fatalf("rules: %+v", g.Role.Rules)
	}

	root, err := clone.Build(settings(), rootSpec())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range root.Guard.Job.Spec.Template.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "GUARD_PARENT") || e.Name == "GUARD_TARGET_TIME" {
			t.Fatalf("a root's guard has no parent: %s", e.Name)
		}
	}
	s := settings()
	s.CloneGuard = clone.GuardSettings{Image: "registry.local/tools:1", Timeout: "30m"}
	o, err := clone.Build(s, rootSpec())
	if err != nil {
		t.Fatal(err)
	}
	if o.Guard.Job.Spec.Template.Spec.Containers[0].Image != "registry.local/tools:1" || *o.Guard.Job.Spec.ActiveDeadlineSeconds != 1800 {
		t.Fatal("cloneGuard.image and timeout are not applied")
	}
}

// The built-in validation is real: what the apiserver would refuse in the
// guard Job is refused.
func TestBuiltinCheckRejectsWhatTheAPIServerRejects(t *testing.T) {
	o, err := clone.Build(settings(), childSpec())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := yaml.Marshal(&o.Guard.Job)
	for name, tc := range map[string]struct{ from, to, want string }{
		"unknown field":      {"activeDeadlineSeconds", "activeDeadlineSecond", "unknown field"},
		"restart policy":     {"restartPolicy: Never", "restartPolicy: Always", "restartPolicy"},
		"wrong type":         {"backoffLimit: 3", "backoffLimit: three", "backoffLimit"},
		"undeclared volume":  {"- mountPath: /tmp\n          name: tmp", "- mountPath: /tmp\n          name: scratch", "not declared"},
		"name over 63":       {"name: " + o.Guard.Job.Metadata.Name, "name: " + strings.Repeat("x", 64), "metadata.name"},
		"no container image": {"image: " + clone.DefaultGuardImage, "image: \"\"", "image"},
	} {
		bad := strings.Replace(string(b), tc.from, tc.to, 1)
		if bad == string(b) {
			t.Fatalf("%s: the Job has no %q:\n%s", name, tc.from, b)
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(bad), &m); err != nil {
			t.Fatal(err)
		}
		if err := crdschema.ValidateBuiltin(m); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error about %s, got %v", name, tc.want, err)
		}
	}
}

// fakeStore is what the guard script sees: fake barman-cloud commands (a
// catalog the test edits) and a fake API server that says whether the
// Cluster exists.
type fakeStore struct {
	t        *testing.T
	dir      string
	env      []string
	mu       sync.Mutex
	cluster  bool
	deleting bool     // the Cluster has a deletionTimestamp
	owner    string   // the ownerReferences the last PATCH of a Job set
	patched  []string // the Jobs patched
	deleted  []string // Clusters deleted
	list     string   // the Cluster list (JSON)
}

func newFakeStore(t *testing.T) *fakeStore {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	f := &fakeStore{t: t, dir: t.TempDir()}
	bin := filepath.Join(f.dir, "bin")
	creds := filepath.Join(f.dir, "credentials")
	sa := filepath.Join(f.dir, "sa")
	for _, d := range []string{bin, creds, sa} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// backup-list prints catalog-<server>.json (empty list when missing);
	// check-wal-archive fails like barman when wals-<server> exists.
	f.write("bin/barman-cloud-backup-list", `#!/bin/sh
for a; do server=$a; done
echo "$*" >> "`+f.dir+`/calls"
if [ -f "`+f.dir+`/catalog-$server.json" ]; then cat "`+f.dir+`/catalog-$server.json"; else echo '{"backups_list": []}'; fi
`, 0o755)
	f.write("bin/barman-cloud-check-wal-archive", `#!/bin/sh
for a; do server=$a; done
if [ -f "`+f.dir+`/wals-$server" ]; then echo "ERROR: WAL archive check failed for server $server: Expected empty archive" >&2; exit 1; fi
`, 0o755)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer guard-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/apis/batch/v1/namespaces/shop-feature-1/jobs/feature-1-pg1-") {
			b, _ := io.ReadAll(r.Body)
			f.owner = string(b)
			f.patched = append(f.patched, strings.TrimPrefix(r.URL.Path, "/apis/batch/v1/namespaces/shop-feature-1/jobs/"))
			fmt.Fprint(w, `{}`)
			return
		}
		const clusters = "/apis/postgresql.cnpg.io/v1/namespaces/shop-feature-1/clusters"
		if r.Method == http.MethodGet && r.URL.Path == clusters {
			fmt.Fprint(w, f.list)
			return
		}
		if r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, clusters+"/") {
			f.deleted = append(f.deleted, strings.TrimPrefix(r.URL.Path, clusters+"/"))
			fmt.Fprint(w, `{}`)
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/apis/postgresql.cnpg.io/v1/namespaces/shop-feature-1/clusters/feature-1-pg1") {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if !f.cluster {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if f.deleting {
			fmt.Fprint(w, `{"kind":"Cluster","metadata":{"uid":"c0ffee","deletionTimestamp":"2026-11-26T10:00:00Z"}}`)
			return
		}
		fmt.Fprint(w, `{"kind":"Cluster","metadata":{"uid":"c0ffee"}}`)
	}))
	t.Cleanup(srv.Close)
	f.write("sa/token", "guard-token\n", 0o644)
	f.write("sa/ca.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})), 0o644)
	u, _ := url.Parse(srv.URL)
	f.env = []string{
		"PATH=" + bin + ":" + os.Getenv("PATH"),
		"KUBERNETES_SERVICE_HOST=" + u.Hostname(), "KUBERNETES_SERVICE_PORT=" + u.Port(),
		"GUARD_SERVICEACCOUNT_DIR=" + sa, "GUARD_CREDENTIALS_DIR=" + creds, "GUARD_POLL_SECONDS=0",
		"GUARD_NAMESPACE=shop-feature-1",
	}
	return f
}

func (f *fakeStore) write(rel, content string, mode os.FileMode) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, rel), []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeStore) keys() {
	f.write("credentials/ACCESS_KEY_ID", "AKIA-feature-1", 0o644)
	f.write("credentials/ACCESS_SECRET_KEY", "s3cret", 0o644)
}

// backup adds a completed base backup of server that ended at end,
// in barman-cloud-backup-list's JSON (ctime times, as barman 3.x writes).
func (f *fakeStore) backup(server string, end time.Time) {
	f.write("catalog-"+server+".json", fmt.Sprintf(`{"backups_list": [{"backup_id": "%s", "status": "DONE", "begin_time": %q, "end_time": %q}]}`,
		end.Format("20060102T150405"), end.Add(-10*time.Second).UTC().Format("Mon Jan _2 15:04:05 2006"), end.UTC().Format("Mon Jan _2 15:04:05 2006")), 0o644)
}

// run runs the guard Job's container command with the Job's own
// environment (as clone.Build made it) on top of the fakes; each time the
// script logs a line containing a key of on, that function runs once.
func (f *fakeStore) run(spec clone.Spec, on map[string]func()) (exit int, out string) {
	f.t.Helper()
	o, err := clone.Build(settings(), spec)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.runJob(o.Guard.Job, on)
}

func (f *fakeStore) runJob(job clone.Job, on map[string]func()) (exit int, out string) {
	f.t.Helper()
	c := job.Spec.Template.Spec.Containers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The pod runs the ConfigMap's guard.py from /guard; here, a copy.
	script := filepath.Join(f.dir, "guard.py")
	f.write("guard.py", clone.GuardScript(), 0o644)
	if strings.Join(c.Command, " ") != "python3 /guard/guard.py" {
		f.t.Fatalf("command %v", c.Command)
	}
	cmd := exec.CommandContext(ctx, "python3", script)
	for _, e := range c.Env {
		if e.ValueFrom == nil && e.Name != "GUARD_CREDENTIALS_DIR" {
			cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
		}
	}
	cmd.Env = append(cmd.Env, f.env...)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	var b strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		b.WriteString(line + "\n")
		for k, fn := range on {
			if strings.Contains(line, k) {
				fn()
				delete(on, k)
			}
		}
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		f.t.Fatalf("the guard did not finish:\n%s", b.String())
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), b.String()
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return 0, b.String()
}

func guardChild() clone.Spec {
	s := childSpec()
	s.Namespace = "shop-feature-1"
	s.Source.TargetTime = nil
	return s
}

// A child's guard waits for the credentials a replicator fills, then for
// the parent's first completed base backup, and only then lets the sync
// apply the Cluster: the race CNPG gives up on cannot happen.
func TestGuardWaitsForCredentialsAndTheParentsFirstBackup(t *testing.T) {
	f := newFakeStore(t)
	spec := guardChild()
	exit, out := f.run(spec, map[string]func(){
		"waiting for keys ACCESS_KEY_ID, ACCESS_SECRET_KEY of Secret offshoot-backup-credentials": f.keys,
		"waiting for the first completed base backup of staging": func() {
			f.backup(spec.Source.ServerName, time.Now().Add(-time.Minute))
		},
	})
	if exit != 0 || !strings.Contains(out, "READY: staging (staging-20261126t090000z-beef) has 1 completed base backup(s)") ||
		strings.Index(out, "waiting for keys") > strings.Index(out, "waiting for the first completed") {
		t.Fatalf("exit %d:\n%s", exit, out)
	}
	calls, _ := os.ReadFile(filepath.Join(f.dir, "calls"))
	if !strings.Contains(string(calls), "--endpoint-url http://minio:9000 --format json s3://backups/offshoot staging-20261126t090000z-beef") {
		t.Fatalf("backup-list called as %s", calls)
	}
}

// Once the Cluster exists (every later sync: a new commit, a self-heal of
// something else) the guard passes at once, whatever the archive holds.
func TestGuardPassesWhenTheClusterExists(t *testing.T) {
	f := newFakeStore(t)
	f.mu.Lock()
	f.cluster = true
	f.mu.Unlock()
	f.write("wals-"+guardChild().ServerName, "", 0o644)
	exit, out := f.run(guardChild(), nil)
	if exit != 0 || !strings.Contains(out, "Cluster feature-1-pg1 exists") {
		t.Fatalf("exit %d:\n%s", exit, out)
	}
	if !strings.Contains(f.owner, `"kind": "Cluster"`) || !strings.Contains(f.owner, `"uid": "c0ffee"`) {
		t.Fatalf("the guard must make itself a dependent of the existing Cluster, patched %q", f.owner)
	}
}

// Once per generation the adopt Job (in the Cluster's wave) makes the guard Job a dependent of
// the new Cluster: deleting the Cluster deletes its guard, so self-heal
// re-creates the guard, which runs again before the Cluster.
func TestAdoptJobMakesTheGuardADependentOfTheCluster(t *testing.T) {
	f := newFakeStore(t)
	f.mu.Lock()
	f.cluster = true
	f.mu.Unlock()
	o, err := clone.Build(settings(), guardChild())
	if err != nil {
		t.Fatal(err)
	}
	exit, out := f.runJob(o.Guard.Adopt, nil)
	want := `{"metadata": {"ownerReferences": [{"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "name": "feature-1-pg1", "uid": "c0ffee", "controller": false, "blockOwnerDeletion": false}]}}`
	if exit != 0 || f.owner != want || strings.Join(f.patched, ",") != o.Guard.Job.Metadata.Name+","+o.Guard.Adopt.Metadata.Name {
		t.Fatalf("exit %d, patched %v with %s:\n%s", exit, f.patched, f.owner, out)
	}
	if !strings.Contains(out, "is now deleted with Cluster feature-1-pg1") {
		t.Fatal(out)
	}
}

// A Cluster deleted by hand and about to be re-created by Argo CD's
// self-heal would meet its own archive ("Expected empty archive"): the
// guard refuses instead, with exit code 3, which fails the Job at once.
func TestGuardRefusesToRecreateAClusterOverItsOwnArchive(t *testing.T) {
	f := newFakeStore(t)
	f.keys()
	spec := guardChild()
	f.backup(spec.Source.ServerName, time.Now().Add(-time.Hour))
	f.write("wals-"+spec.ServerName, "", 0o644)
	exit, out := f.run(spec, nil)
	if exit != clone.GuardRefusedExitCode || !strings.Contains(out, "REFUSED: the archive feature-1-20261126t090100z-0123 already holds WAL") ||
		!strings.Contains(out, "offshoot refresh") {
		t.Fatalf("exit %d:\n%s", exit, out)
	}
	root := rootSpec()
	root.Cluster = "feature-1-pg1" // the fake API server knows this name only
	root.Namespace = "shop-feature-1"
	f.write("wals-"+root.ServerName, "", 0o644)
	if exit, out := f.run(root, nil); exit != clone.GuardRefusedExitCode {
		t.Fatalf("a root re-created over its own archive: exit %d:\n%s", exit, out)
	}
	os.Remove(filepath.Join(f.dir, "wals-"+root.ServerName))
	if exit, out := f.run(root, nil); exit != 0 || !strings.Contains(out, "READY: own archive") {
		t.Fatalf("a new root: exit %d:\n%s", exit, out)
	}
}

// With a point in time T: a backup that ended at or before T is needed
// (none can appear later: refused at once), then WAL past T.
func TestGuardPointInTime(t *testing.T) {
	f := newFakeStore(t)
	f.keys()
	spec := guardChild()
	at := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	spec.Source.TargetTime = &at

	f.backup(spec.Source.ServerName, at.Add(time.Hour)) // the first backup ended after T
	exit, out := f.run(spec, nil)
	if exit != clone.GuardRefusedExitCode || !strings.Contains(out, "no base backup of staging") || !strings.Contains(out, "choose a later --at") {
		t.Fatalf("T before the parent's first backup: exit %d:\n%s", exit, out)
	}
	// A backup that ended before T and a later one: recoverable.
	before, after := at.Add(-time.Hour), at.Add(time.Hour)
	f.write("catalog-"+spec.Source.ServerName+".json", fmt.Sprintf(`{"backups_list": [
		{"backup_id": "a", "status": "DONE", "end_time": %q},
		{"backup_id": "b", "status": "FAILED", "end_time": %q},
		{"backup_id": "c", "status": "DONE", "end_time_iso": %q, "end_time": "ignored"}]}`,
		before.Format("Mon Jan _2 15:04:05 2006"), at.Add(-time.Minute).Format("Mon Jan _2 15:04:05 2006"), after.Format(time.RFC3339)), 0o644)
	exit, out = f.run(spec, nil)
	if exit != 0 || !strings.Contains(out, "a later one proves WAL past it") {
		t.Fatalf("exit %d:\n%s", exit, out)
	}
}

// The guard script is the one embedded, run by the Job.
func TestGuardScriptIsEmbedded(t *testing.T) {
	b, err := os.ReadFile("guard.py")
	if err != nil || string(b) != clone.GuardScript() || !strings.Contains(clone.GuardScript(), "barman-cloud-backup-list") {
		t.Fatal("guard.py is not what the Job runs")
	}
}

// A protected environment's Cluster carries Prune=false, so after a
// refresh Argo CD would keep the previous generation running and archiving:
// the retire Job (protected environments only, after the new Cluster is
// Healthy) deletes the older generations, and nothing else.
func TestRetireJobDeletesOnlyOlderGenerations(t *testing.T) {
	f := newFakeStore(t)
	spec := guardChild()
	spec.Env, spec.Cluster, spec.ServerName, spec.Protected = "feature-1", "feature-1-pg3", "feature-1-20261126t090100z-0123", true
	o, err := clone.Build(settings(), spec)
	if err != nil {
		t.Fatal(err)
	}
	r := o.Guard.Retire
	if r == nil || !strings.HasPrefix(r.Metadata.Name, "feature-1-pg3-retire-") || len(r.Metadata.Name) != len("feature-1-pg3-retire-")+5 ||
		r.Metadata.Annotations[clone.HookAnnotation] != "" || wave(t, r.Metadata.Annotations) <= wave(t, o.Cluster.Metadata.Annotations) {
		t.Fatalf("retire hook: %+v", r)
	}
	var canDelete bool
	for _, rule := range o.Guard.Role.Rules {
		canDelete = canDelete || strings.Contains(strings.Join(rule.Verbs, ","), "delete")
	}
	if !canDelete {
		t.Fatal("a protected environment's guard must be allowed to delete its old Clusters")
	}
	f.mu.Lock()
	f.list = `{"items": [
		{"metadata": {"name": "feature-1-pg1"}, "spec": {"plugins": [{"parameters": {"serverName": "feature-1-old1"}}]}},
		{"metadata": {"name": "feature-1-pg2"}, "spec": {"plugins": [{"parameters": {"serverName": "feature-1-old2"}}]}},
		{"metadata": {"name": "feature-1-pg3"}},
		{"metadata": {"name": "feature-1-pg4"}},
		{"metadata": {"name": "feature-1-pgx"}},
		{"metadata": {"name": "feature-10-pg1"}}]}`
	f.mu.Unlock()
	exit, out := f.runJob(*r, nil)
	if exit != 0 || strings.Join(f.deleted, ",") != "feature-1-pg1,feature-1-pg2" {
		t.Fatalf("exit %d, deleted %v:\n%s", exit, f.deleted, out)
	}
	if !strings.Contains(out, "its archive feature-1-old1 stays in the object store") {
		t.Fatal(out)
	}
	// An unprotected environment's old Cluster is pruned by Argo CD: no retire Job, no right to delete.
	o, _ = clone.Build(settings(), guardChild())
	if o.Guard.Retire != nil || len(o.Guard.Role.Rules) != 2 {
		t.Fatalf("unprotected: retire %v, rules %+v", o.Guard.Retire, o.Guard.Role.Rules)
	}
}

// With T and no backup after it, the guard waits until the parent's WAL
// archive holds a segment written after T (listed with boto3 on s3://
// stores; a fake boto3 module stands in for S3 here).
func TestGuardWaitsForWALPastTheTarget(t *testing.T) {
	f := newFakeStore(t)
	f.keys()
	spec := guardChild()
	at := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	spec.Source.TargetTime = &at
	f.backup(spec.Source.ServerName, at.Add(-time.Hour))
	pydir := filepath.Join(f.dir, "py")
	if err := os.MkdirAll(pydir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The fake lists <dir>/wals.txt: one "key unix-mtime" per line, and
	// records how it was called.
	f.write("py/boto3.py", `import datetime, os
DIR = `+fmt.Sprintf("%q", f.dir)+`
class _Pages:
    def paginate(self, Bucket, Prefix):
        with open(os.path.join(DIR, "boto3-calls"), "a") as c:
            c.write(Bucket + " " + Prefix + "\n")
        contents = []
        try:
            lines = open(os.path.join(DIR, "wals.txt")).read().split("\n")
        except OSError:
            lines = []
        for line in lines:
            if line:
                key, mtime = line.split()
                contents.append({"Key": key, "LastModified": datetime.datetime.fromtimestamp(int(mtime), datetime.timezone.utc)})
        yield {"Contents": contents}
class _Client:
    def get_paginator(self, name):
        assert name == "list_objects_v2"
        return _Pages()
def client(service, endpoint_url=None, aws_access_key_id=None, aws_secret_access_key=None):
    assert service == "s3" and aws_access_key_id == "AKIA-feature-1", (service, aws_access_key_id)
    return _Client()
`, 0o644)
	f.env = append(f.env, "PYTHONPATH="+pydir)
	wals := func(lines ...string) { f.write("wals.txt", strings.Join(lines, "\n")+"\n", 0o644) }
	prefix := "offshoot/" + spec.Source.ServerName + "/wals/0000000100000000/"
	// Before T only (and a history file after it, which does not count).
	wals(prefix+"000000010000000000000003.gz "+fmt.Sprint(at.Add(-time.Minute).Unix()),
		"offshoot/"+spec.Source.ServerName+"/wals/00000002.history "+fmt.Sprint(at.Add(time.Minute).Unix()))
	exit, out := f.run(spec, map[string]func(){
		"waiting for WAL of staging written after " + at.Format(time.RFC3339): func() {
			wals(prefix + "000000010000000000000004.gz " + fmt.Sprint(at.Add(2*time.Minute).Unix()))
		},
	})
	if exit != 0 || !strings.Contains(out, "READY: a base backup of staging ended at or before "+at.Format(time.RFC3339)+", and its WAL archive holds a segment written after it") {
		t.Fatalf("exit %d:\n%s", exit, out)
	}
	calls, _ := os.ReadFile(filepath.Join(f.dir, "boto3-calls"))
	if !strings.HasPrefix(string(calls), "backups offshoot/staging-20261126t090000z-beef/wals/\n") {
		t.Fatalf("listed %q", calls)
	}
}

// An error on the way (here: a catalog that is not JSON) is logged and
// retried, not a crash of the pod.
func TestGuardRetriesAfterErrors(t *testing.T) {
	f := newFakeStore(t)
	f.keys()
	spec := guardChild()
	f.write("catalog-"+spec.Source.ServerName+".json", "<html>502 Bad Gateway</html>", 0o644)
	exit, out := f.run(spec, map[string]func(){
		"waiting for a retry after JSONDecodeError": func() { f.backup(spec.Source.ServerName, time.Now().Add(-time.Minute)) },
	})
	if exit != 0 || !strings.Contains(out, "READY:") {
		t.Fatalf("exit %d:\n%s", exit, out)
	}
}

// A Cluster still being deleted (its finalizers running) is not a Cluster
// that exists: the guard waits until it is gone, then checks the archive.
func TestGuardWaitsForADeletedClusterToGo(t *testing.T) {
	f := newFakeStore(t)
	f.keys()
	f.cluster, f.deleting = true, true
	spec := guardChild()
	f.write("wals-"+spec.ServerName, "", 0o644)
	exit, out := f.run(spec, map[string]func(){
		"waiting for Cluster feature-1-pg1 to finish being deleted": func() {
			f.mu.Lock()
			f.cluster = false
			f.mu.Unlock()
		},
	})
	if exit != clone.GuardRefusedExitCode || f.owner != "" || !strings.Contains(out, "already holds WAL") {
		t.Fatalf("exit %d, owner %q:\n%s", exit, f.owner, out)
	}
}
