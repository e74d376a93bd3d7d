package e2e

// TestNode is issue 12's scenario on a real node: the CloudNativePG
// operator and the Barman Cloud plugin restore each branch's PostgreSQL from
// its parent's backups, through Argo CD, with offshoot's own rendered
// manifests (offshoot.yaml edited for this machine only), and the rows
// prove it. Opt-in (E2E_NODE=1; `make e2e-node`, `make e2e-up`).
//
// Flags (environment):
//
//	E2E_NODE_WAIT_PARENT_BACKUP=1  wait in the harness for the parent's first
//	    completed Backup before syncing a child (a workaround: offshoot
//	    itself should hold a child back until its parent can be cloned)
//	E2E_NODE_SWITCH_WAL=1  after writing rows, switch the parent's WAL
//	    segment so they are archived at once (a workaround: otherwise rows
//	    written after the parent's base backup reach the archive only at
//	    archive_timeout, 5 min)
//	E2E_NODE_HEALTH_OVERRIDE=1  keep the e2e's Cluster health override
//	E2E_NODE_KEEP=1  leave everything running when the scenario is done
//	    (make e2e-up) until SIGTERM/SIGINT (make e2e-down)

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

type rowsAnswer struct {
	Count    int64  `json:"count"`
	Min      int64  `json:"min"`
	Max      int64  `json:"max"`
	Sum      int64  `json:"sum"`
	Database string `json:"database"`
}

func flagOn(k string) bool { return os.Getenv(k) != "" && os.Getenv(k) != "0" }

func TestNode(t *testing.T) {
	if !flagOn("E2E_NODE") {
		t.Skip("the real-node e2e is opt-in: make e2e-node (E2E_NODE=1)")
	}
	mainRepo := mainRepoDir(t)
	t0 := time.Now()
	n := startNode(t)
	n.startS3(t)
	n.storage(t, 16)
	// Argo CD and the CRDs first (CNPG's v1.30.0, the plugin's v0.15.0: the
	// plugin must find its CRD when it starts), then the operator and plugin.
	n.realHealth = !flagOn("E2E_NODE_HEALTH_OVERRIDE")
	ti := time.Now()
	n.install(t, mainRepo)
	n.mark("Argo CD up with offshoot's health checks", time.Since(ti))
	n.installCNPG(t)
	n.installPlugin(t)
	n.mark("start-up: nothing → node, CNPG, plugin, S3, Argo CD", time.Since(t0))
	defer n.report(t)

	var keys sync.Map
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.envController(ctx, t, &keys)

	n.offshootT(t, "init", "--app", "shop", "--image", "ghcr.io/acme/shop")
	n.configure(t)
	n.applyOffshootManifests(t, mainRepo)

	// 1. master: a fresh database; rows 1–100 through its app.
	master := n.syncEnv(t, "master", "", "1a2b3c4")
	n.waitHealthy(t, master)
	n.writeRows(t, master, 1, 100)
	// 2. staging from master, right after.
	staging := n.syncChild(t, "staging", "master", "4d5e6f7", master, 100)
	n.writeRows(t, staging, 101, 150)
	if got := n.rows(t, master); got.Count != 100 {
		t.Errorf("master sees %d rows after staging wrote 101–150, want 100", got.Count)
	}
	// 3. feature_1 from staging, right after.
	f1 := n.syncChild(t, "feature_1", "staging", "7a8b9c0", staging, 150)
	n.writeRows(t, f1, 151, 160)
	for _, e := range []struct {
		env  envInfo
		want int64
	}{{master, 100}, {staging, 150}, {f1, 160}} {
		got := n.rows(t, e.env)
		n.rowsSeen = append(n.rowsSeen, fmt.Sprintf("%-10s %-28s count=%d min=%d max=%d", e.env.Branch, e.env.Namespace, got.Count, got.Min, got.Max))
		if got.Count != e.want {
			t.Errorf("%s answers %d rows, want %d", e.env.Branch, got.Count, e.want)
		}
	}

	// 4. Synced and Healthy for real: offshoot status -w exits 0.
	ts := time.Now()
	out, err := n.offshootCmd(context.Background(), n.argoEnv(), "status", "--plaintext", "-w", "--timeout", "300s")
	n.statusOut = out
	writeFile(t, filepath.Join(n.logs, "offshoot-status.txt"), out)
	if err != nil {
		t.Errorf("offshoot status -w: %v\n%s", err, out)
	} else {
		n.mark("offshoot status -w (all Synced and Healthy) exited 0", time.Since(ts))
	}

	// The write audit: no object under one env's serverName written with
	// another env's key, ever.
	n.audit(t, &keys, []envInfo{master, staging, f1})

	if flagOn("E2E_NODE_KEEP") {
		n.keep(t, []envInfo{master, staging, f1})
	}
}

// configure points offshoot.yaml at this machine — the root branch, the
// storage class, the local PostgreSQL image (numeric tag), the S3 endpoint
// and bucket, credentials the namespace gets from elsewhere — and pushes it.
func (n *node) configure(t *testing.T) {
	dir := filepath.Join(n.dir, "envrepo-edit")
	git := func(args ...string) {
		t.Helper()
		c := exec.Command("git", append([]string{"-c", "user.name=e2e", "-c", "user.email=e2e@offshoot.dev"}, args...)...)
		c.Dir = dir
		if args[0] == "clone" {
			c.Dir = n.dir
		}
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	git("clone", "-q", n.repoURL(), dir)
	p := filepath.Join(dir, "offshoot.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	set := func(v any, path ...string) {
		m := cfg
		for _, k := range path[:len(path)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				t.Fatalf("offshoot.yaml has no %s", strings.Join(path, "."))
			}
			m = next
		}
		if v == nil {
			delete(m, path[len(path)-1])
		} else {
			m[path[len(path)-1]] = v
		}
	}
	set("master", "branches", "root")
	set("manual", "database", "storageClass")
	set(n.prep.PGImage, "database", "imageName")
	set("s3://"+s3Bucket+"/offshoot", "database", "objectStore", "destinationPath")
	set("http://"+n.s3Addr, "database", "objectStore", "endpointURL")
	set("existing", "database", "objectStore", "credentials", "source")
	set(nil, "database", "objectStore", "credentials", "replicated")
	set(false, "app", "tls")
	// The clone guard runs barman-cloud from the sidecar image built here
	// (v0.14.0: see docs/e2e.md), not the default v0.15.0 one.
	set(map[string]any{"image": sidecarImage}, "database", "cloneGuard")
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, "# Edited by the real-node e2e for this machine (TestNode.configure).\n"+string(out))
	writeFile(t, filepath.Join(n.logs, "offshoot.yaml"), string(out))
	git("commit", "-qam", "e2e: this machine's storage class, PostgreSQL image, S3 and credentials")
	git("push", "-q", "origin", "HEAD")
}

// syncEnv tags the app image for sha, runs offshoot sync (notifying Argo CD)
// and returns the env.
func (n *node) syncEnv(t *testing.T, branch, parent, sha string) envInfo {
	t.Helper()
	if out, err := n.ctr("images", "tag", "--force", n.prep.AppImage, "ghcr.io/acme/shop:"+sha); err != nil {
		t.Fatalf("tag app image: %v %s", err, out)
	}
	args := []string{"sync", branch, "--sha", sha}
	if parent != "" {
		args = append(args, "--parent", parent)
	}
	out := n.offshootEnvT(t, n.argoEnv(), args...)
	n.syncedAt = time.Now()
	if !commitRE.MatchString(out) {
		t.Fatalf("offshoot %v: no commit in output:\n%s", args, out)
	}
	e, ok := n.envs(t)[branch]
	if !ok {
		t.Fatalf("offshoot list has no %s", branch)
	}
	fmt.Printf("e2e-node: synced %s (ns %s, Cluster %s, serverName %s, clones %s)\n", branch, e.Namespace, e.Cluster, e.ServerName, e.ClonedFrom)
	return e
}

// waitHealthy waits for the env's Application: Synced at its revision and
// Healthy, and for its app to answer.
func (n *node) waitHealthy(t *testing.T, e envInfo) {
	t.Helper()
	since := n.syncedAt
	waitFor(t, e.Branch+" Synced and Healthy", 10*time.Minute, func() error {
		a := n.getJSON(t, "application", e.Namespace, "-n", "argocd")
		if a == nil {
			return fmt.Errorf("no Application %s", e.Namespace)
		}
		if st, h := str(a, "status", "sync", "status"), str(a, "status", "health", "status"); st != "Synced" || h != "Healthy" {
			return fmt.Errorf("%s: %s/%s %s", e.Namespace, st, h, n.clusterPhase(t, e))
		}
		return nil
	})
	n.mark(fmt.Sprintf("%s: sync returned → Application Synced and Healthy", e.Branch), time.Since(since))
	waitFor(t, e.Branch+"'s app answers", 3*time.Minute, func() error { _, err := n.rowsErr(t, e); return err })
}

func (n *node) clusterPhase(t testing.TB, e envInfo) string {
	cl := n.getJSON(t, "cluster.postgresql.cnpg.io", e.Cluster, "-n", e.Namespace)
	if cl == nil {
		return "(no Cluster yet)"
	}
	return fmt.Sprintf("(Cluster %s: %q %s)", e.Cluster, str(cl, "status", "phase"), str(cl, "status", "phaseReason"))
}

// syncChild syncs branch from parent right after the parent (unless
// E2E_NODE_WAIT_PARENT_BACKUP) and measures sync returned → the child's app
// answers with the parent's rows; it records every failed restore try.
func (n *node) syncChild(t *testing.T, branch, parentBranch, sha string, parent envInfo, want int64) envInfo {
	t.Helper()
	if flagOn("E2E_NODE_SWITCH_WAL") {
		n.switchWAL(t, parent)
	}
	if flagOn("E2E_NODE_WAIT_PARENT_BACKUP") {
		tw := time.Now()
		n.waitBackup(t, parent)
		n.mark(fmt.Sprintf("E2E_NODE_WAIT_PARENT_BACKUP: %s's first backup completed after", parent.Branch), time.Since(tw))
	}
	e := n.syncEnv(t, branch, parentBranch, sha)
	since := n.syncedAt
	seen := map[string]bool{}
	var got rowsAnswer
	waitFor(t, fmt.Sprintf("%s's app answering with %s's %d rows", branch, parentBranch, want), 15*time.Minute, func() error {
		n.restoreFailures(t, e, seen)
		phase := n.clusterPhase(t, e)
		if strings.Contains(phase, "unrecoverable") {
			t.Fatalf("%s: CNPG gave up: %s; failed restore tries: %s", branch, phase, strings.Join(n.failures, "; "))
		}
		r, err := n.rowsErr(t, e)
		if err != nil {
			return fmt.Errorf("%v %s", err, phase)
		}
		got = r
		return nil
	})
	d := time.Since(since)
	if got.Count != want {
		t.Fatalf("%s restored from %s answers %d rows (min %d, max %d), want %d: the rows written after %s's base backup were not in its archive yet "+
			"(WAL segment not archived; E2E_NODE_SWITCH_WAL=1 switches it in the harness)", branch, parentBranch, got.Count, got.Min, got.Max, want, parentBranch)
	}
	n.mark(fmt.Sprintf("%s: sync returned → app answers with %s's %d rows", branch, parentBranch, want), d)
	n.childTimes = append(n.childTimes, d)
	n.restoreSize(t, parent, e)
	return e
}

// restoreFailures records each failed try of the child's recovery Job.
func (n *node) restoreFailures(t testing.TB, e envInfo, seen map[string]bool) {
	out, err := n.kubectlErr("get", "pods", "-n", e.Namespace, "-o", "json")
	if err != nil {
		return
	}
	var pods struct{ Items []map[string]any }
	if json.Unmarshal([]byte(out), &pods) != nil {
		return
	}
	for _, p := range pods.Items {
		name := str(p, "metadata", "name")
		if !strings.Contains(name, "recovery") || str(p, "status", "phase") != "Failed" || seen[name] {
			continue
		}
		seen[name] = true
		logs, _ := n.kubectlErr("logs", "-n", e.Namespace, name, "--all-containers")
		msg := "?"
		for _, l := range strings.Split(logs, "\n") {
			var entry struct{ Msg, Error string }
			if json.Unmarshal([]byte(l), &entry) == nil && entry.Error != "" && (msg == "?" || strings.Contains(entry.Msg, "restore")) {
				msg = entry.Msg + ": " + entry.Error
			}
		}
		if len(msg) > 300 {
			msg = msg[:300]
		}
		line := fmt.Sprintf("%s +%.0fs: %s", name, time.Since(n.syncedAt).Seconds(), msg)
		n.failures = append(n.failures, line)
		fmt.Println("e2e-node: restore try failed: " + line)
	}
}

func (n *node) switchWAL(t *testing.T, e envInfo) {
	out, err := n.kubectlErr("exec", "-n", e.Namespace, e.Cluster+"-1", "-c", "postgres", "--", "psql", "-U", "postgres", "-d", "app", "-Atc", "select pg_walfile_name(pg_switch_wal())")
	if err != nil {
		t.Fatalf("E2E_NODE_SWITCH_WAL: %v %s", err, out)
	}
	fmt.Printf("e2e-node: E2E_NODE_SWITCH_WAL: %s closed WAL segment %s\n", e.Branch, strings.TrimSpace(out))
}

func (n *node) waitBackup(t *testing.T, e envInfo) {
	waitFor(t, e.Branch+"'s first completed Backup", 10*time.Minute, func() error {
		out, err := n.kubectlErr("get", "backups.postgresql.cnpg.io", "-n", e.Namespace, "-o", "jsonpath={.items[*].status.phase}")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "completed") {
			return fmt.Errorf("backups: %q", out)
		}
		return nil
	})
}

// appURL is http://<ClusterIP of the env's Service app>.
func (n *node) appURL(t testing.TB, e envInfo) (string, error) {
	ip, err := n.kubectlErr("get", "service", "app", "-n", e.Namespace, "-o", "jsonpath={.spec.clusterIP}")
	if err != nil || ip == "" {
		return "", fmt.Errorf("no Service app in %s yet: %v", e.Namespace, err)
	}
	return "http://" + ip, nil
}

var appClient = &http.Client{Timeout: 5 * time.Second}

func (n *node) rowsErr(t testing.TB, e envInfo) (rowsAnswer, error) {
	var r rowsAnswer
	u, err := n.appURL(t, e)
	if err != nil {
		return r, err
	}
	resp, err := appClient.Get(u + "/rows")
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return r, fmt.Errorf("%s/rows: %s %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	return r, json.Unmarshal(b, &r)
}

func (n *node) rows(t testing.TB, e envInfo) rowsAnswer {
	t.Helper()
	r, err := n.rowsErr(t, e)
	if err != nil {
		t.Fatalf("%s: %v", e.Branch, err)
	}
	return r
}

func (n *node) writeRows(t *testing.T, e envInfo, from, to int) {
	t.Helper()
	u, err := n.appURL(t, e)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := appClient.Post(fmt.Sprintf("%s/rows?from=%d&to=%d", u, from, to), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: write rows %d–%d: %s %s", e.Branch, from, to, resp.Status, b)
	}
	fmt.Printf("e2e-node: %s wrote rows %d–%d: %s", e.Branch, from, to, b)
}

// restoreSize records what the child restored: the parent's archive (base
// backups and WAL) in the object store, and the child's data directory.
func (n *node) restoreSize(t *testing.T, parent, child envInfo) {
	objs, err := n.s3List("offshoot/" + parent.ServerName + "/")
	if err != nil {
		t.Errorf("list %s: %v", parent.ServerName, err)
		return
	}
	var base, wal int64
	for _, o := range objs {
		if strings.Contains(o.Key, "/base/") {
			base += o.Size
		} else if strings.Contains(o.Key, "/wals/") {
			wal += o.Size
		}
	}
	pgdata := "?"
	if pv, err := n.kubectlErr("get", "pvc", "-n", child.Namespace, child.Cluster+"-1", "-o", "jsonpath={.spec.volumeName}"); err == nil && pv != "" {
		if out, err := sh("du", "-sb", filepath.Join(n.pvDir, pv)); err == nil {
			pgdata = strings.Fields(out)[0] + " bytes"
		}
	}
	line := fmt.Sprintf("%s ← %s: parent's archive %s: base backups %d bytes, WAL %d bytes (%d objects); child's PGDATA %s",
		child.Branch, parent.Branch, parent.ServerName, base, wal, len(objs), pgdata)
	n.sizes = append(n.sizes, line)
	fmt.Println("e2e-node: restore size: " + line)
}

// audit checks the S3 write log: every write under an env's serverName was
// made with that env's own key.
func (n *node) audit(t *testing.T, keys *sync.Map, envs []envInfo) {
	owner := map[string]string{} // serverName -> namespace
	for _, e := range envs {
		owner[e.ServerName] = e.Namespace
	}
	counts := map[string]int{}
	bad := 0
	for _, w := range n.s3Writes(t) {
		ns, _ := keys.Load(w.key)
		nsS, _ := ns.(string)
		parts := strings.SplitN(strings.TrimPrefix(w.path, "/"+s3Bucket+"/offshoot/"), "/", 2)
		under := owner[parts[0]]
		counts[fmt.Sprintf("key of %-28s wrote under %s", nsS, under)]++
		if under != "" && nsS != under {
			bad++
			if bad <= 10 {
				t.Errorf("S3 audit: %s %s by key %s (namespace %q), under %s's serverName", w.method, w.path, w.key, nsS, under)
			}
		}
	}
	var lines []string
	for k, v := range counts {
		lines = append(lines, fmt.Sprintf("%s: %d writes", k, v))
	}
	sort.Strings(lines)
	n.auditLines = append(lines, fmt.Sprintf("writes under another env's serverName: %d", bad))
}

// keep leaves everything running for `make e2e-up` until SIGTERM/SIGINT.
func (n *node) keep(t *testing.T, envs []envInfo) {
	var b strings.Builder
	fmt.Fprintf(&b, "offshoot e2e playground (make e2e-down stops it)\n\n")
	fmt.Fprintf(&b, "export KUBECONFIG=%s\nPATH=%s:$PATH   # kubectl\n", n.kubeconfig, n.bin)
	fmt.Fprintf(&b, "Argo CD API: http://127.0.0.1:%d (admin password %s)\nARGOCD_AUTH_TOKEN=%s\n", n.argoPort, n.adminPassword, n.argoToken)
	fmt.Fprintf(&b, "environments repo: %s\noffshoot: %s --env-repo %s --cache-dir %s\n\n", n.repoURL(), n.offshoot, n.repoURL(), filepath.Join(n.dir, "offshoot-cache"))
	for _, e := range envs {
		u, _ := n.appURL(t, e)
		fmt.Fprintf(&b, "%-10s app: curl %s/rows\n           psql: kubectl exec -it -n %s %s-1 -c postgres -- psql -U postgres -d app\n", e.Branch, u, e.Namespace, e.Cluster)
	}
	fmt.Fprintf(&b, "\nlogs: %s\n", n.logs)
	info := filepath.Join(n.dir, "playground.txt")
	writeFile(t, info, b.String())
	if p := os.Getenv("E2E_UP_INFO"); p != "" {
		writeFile(t, p, b.String())
	}
	fmt.Print(b.String())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	fmt.Println("e2e-node: stopping the playground")
}

func (n *node) report(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "real-node e2e (TestNode), per step:\n")
	for _, l := range n.timings {
		fmt.Fprintln(&b, "  "+l)
	}
	if len(n.childTimes) > 0 {
		fmt.Fprintf(&b, "median sync returned → child's app answers with the parent's rows (%d children): %.1fs\n", len(n.childTimes), median(n.childTimes).Seconds())
	}
	fmt.Fprintf(&b, "rows per environment:\n")
	for _, l := range n.rowsSeen {
		fmt.Fprintln(&b, "  "+l)
	}
	fmt.Fprintf(&b, "restore sizes:\n")
	for _, l := range n.sizes {
		fmt.Fprintln(&b, "  "+l)
	}
	fmt.Fprintf(&b, "failed restore tries (recovery Job pods):\n")
	for _, l := range n.failures {
		fmt.Fprintln(&b, "  "+l)
	}
	fmt.Fprintf(&b, "S3 write audit:\n")
	for _, l := range n.auditLines {
		fmt.Fprintln(&b, "  "+l)
	}
	fmt.Fprintf(&b, "offshoot status -w:\n%s\n", n.statusOut)
	fmt.Print(b.String())
	writeFile(t, filepath.Join(n.logs, "node-report.txt"), b.String())
}
