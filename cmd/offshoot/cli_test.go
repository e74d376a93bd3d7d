package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/internal/gitserver"
)

type cli struct {
	t       *testing.T
	repo    string // --env-repo
	cache   string
	gitDir  string // where to run git rev-list
	lastOut string
}

func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{"--env-repo", c.repo, "--cache-dir", c.cache}, args...)
	code := run(context.Background(), full, &out, &errb)
	c.lastOut = out.String()
	return code, out.String(), errb.String()
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != 0 {
		c.t.Fatalf("offshoot %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (c *cli) fails(wantCode int, wantErr string, args ...string) {
	c.t.Helper()
	before := c.commits()
	code, out, errs := c.run(args...)
	if code != wantCode || !strings.Contains(errs, wantErr) {
		c.t.Fatalf("offshoot %s: want exit %d and %q, got exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), wantCode, wantErr, code, out, errs)
	}
	if after := c.commits(); after != before {
		c.t.Fatalf("offshoot %s failed but made %d commits", strings.Join(args, " "), after-before)
	}
}

func (c *cli) git(args ...string) string {
	c.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = c.gitDir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (c *cli) commits() int {
	c.t.Helper()
	cmd := exec.Command("git", "rev-list", "--count", "main")
	cmd.Dir = c.gitDir
	out, err := cmd.Output()
	if err != nil {
		return 0 // no branch yet
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

// envServer serves an empty environments repo "shop-environments" over
// smart HTTP (git http-backend on 127.0.0.1) for the test.
func envServer(t *testing.T) (*gitserver.Server, string) {
	t.Helper()
	srv, err := gitserver.Start(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	url, err := srv.CreateBare("shop-environments")
	if err != nil {
		t.Fatal(err)
	}
	return srv, url
}

func TestCLIAgainstHTTPGitServer(t *testing.T) {
	srv, url := envServer(t)
	scenario(t, &cli{t: t, repo: url, cache: t.TempDir(), gitDir: srv.Dir("shop-environments")})
}

func TestCLIAgainstLocalPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop-environments")
	c := &cli{t: t, repo: dir, cache: t.TempDir(), gitDir: dir}
	scenario(t, c)
	if st := c.git("status", "--porcelain"); st != "" {
		t.Fatalf("local working copy left dirty:\n%s", st)
	}
}

func scenario(t *testing.T, c *cli) {
	c.ok("init", c.repo, "--root-branch", "master")
	c.fails(1, "already initialised", "init", c.repo)
	c.ok("sync", "master", "--sha", "1a2b3c4")
	c.ok("sync", "staging", "--parent", "master", "--sha", "4d5e6f7")
	out := c.ok("sync", "feature_1", "--parent", "staging", "--sha", "7a8b9c0")
	if !strings.Contains(out, "recovering from staging") {
		t.Fatalf("sync output does not say where the data comes from:\n%s", out)
	}
	n := c.commits()
	c.ok("sync", "feature_1", "--sha", "0f0f0f1")
	if c.commits() != n+1 {
		t.Fatal("a new SHA must make exactly one commit")
	}
	out = c.ok("sync", "feature_1", "--sha", "0f0f0f1")
	if !strings.Contains(out, "up to date") || c.commits() != n+1 {
		t.Fatalf("the same sync twice must commit nothing and say up to date:\n%s", out)
	}

	var items []map[string]any
	if err := json.Unmarshal([]byte(c.ok("list", "-o", "json")), &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 {
		t.Fatalf("list: %v", items)
	}
	byBranch := map[string]map[string]any{}
	for _, it := range items {
		for _, k := range []string{"branch", "name", "parent", "sha", "path", "namespace", "url"} {
			if _, ok := it[k]; !ok {
				t.Fatalf("list -o json item lacks %q: %v", k, it)
			}
		}
		byBranch[it["branch"].(string)] = it
	}
	f1 := byBranch["feature_1"]
	if f1["parent"] != "staging" || f1["sha"] != "0f0f0f1" || !strings.HasPrefix(f1["name"].(string), "feature-1-") ||
		f1["path"] != "envs/"+f1["name"].(string) || f1["namespace"] != "shop-"+f1["name"].(string) ||
		f1["url"] != "https://"+f1["name"].(string)+".preview.example.com" || byBranch["master"]["parent"] != "" {
		t.Fatalf("list -o json: %v", items)
	}
	var yitems []map[string]any
	if err := yaml.Unmarshal([]byte(c.ok("list", "-o", "yaml")), &yitems); err != nil || len(yitems) != 3 {
		t.Fatalf("list -o yaml: %v %v", yitems, err)
	}
	if table := c.ok("list"); !strings.Contains(table, "BRANCH") || !strings.Contains(table, "feature_1  staging") {
		t.Fatalf("list table:\n%s", table)
	}
	tree := c.ok("tree")
	lines := strings.Split(strings.TrimSpace(tree), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "master") || !strings.HasPrefix(lines[1], "└─ staging") || !strings.HasPrefix(lines[2], "   └─ feature_1") {
		t.Fatalf("tree:\n%s", tree)
	}

	render := c.ok("render", "feature_1")
	for _, want := range []string{"kind: Namespace", "kind: Cluster", "kind: ScheduledBackup", "kind: ObjectStore", "kind: Ingress",
		"image: ghcr.io/example/shop:0f0f0f1", "barmanObjectName: parent-archive", "serverName: staging-"} {
		if !strings.Contains(render, want) {
			t.Fatalf("render lacks %q:\n%s", want, render)
		}
	}

	out = c.ok("refresh", "feature_1")
	if !strings.Contains(out, "-pg2") {
		t.Fatalf("refresh must make generation 2:\n%s", out)
	}
	c.ok("sync", "feature_1a", "--parent", "feature_1", "--sha", "1234567")

	// Bad input: clear errors, exit codes, nothing committed.
	c.fails(2, "'..'", "sync", "a..b", "--parent", "master", "--sha", "1234567")
	c.fails(2, "starts with '-'", "sync", "--parent", "master", "--sha", "1234567", "--", "-x")
	c.fails(2, ".lock", "sync", "x.lock", "--parent", "master", "--sha", "1234567")
	c.fails(2, "control character", "sync", "a\x01b", "--parent", "master", "--sha", "1234567")
	c.fails(2, `unknown parent "nope"`, "sync", "feature_2", "--parent", "nope", "--sha", "1234567")
	c.fails(2, "protected", "delete", "staging")
	c.fails(2, "protected", "delete", "master")
	c.fails(2, "required flag", "sync", "feature_2", "--parent", "master")
	c.fails(2, "invalid --at", "sync", "feature_2", "--parent", "master", "--sha", "1234567", "--at", "yesterday")
	c.fails(2, "invalid --output", "list", "-o", "xml")
	c.fails(1, "no such environment", "render", "ghost")

	out = c.ok("delete", "feature_1")
	if !strings.Contains(out, "feature_1a") {
		t.Fatalf("delete must name the children that remain:\n%s", out)
	}
	if out := c.ok("delete", "feature_1"); !strings.Contains(out, "nothing to delete") {
		t.Fatalf("second delete:\n%s", out)
	}
	if tree := c.ok("tree"); !strings.Contains(tree, "staging") || strings.Contains(tree, "feature_1  [") || !strings.Contains(tree, "(parent feature_1 is missing)") {
		t.Fatalf("tree after delete:\n%s", tree)
	}
}

func TestInvalidConfigInRepoIsNamedAndWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "envs")
	c := &cli{t: t, repo: dir, cache: t.TempDir(), gitDir: dir}
	c.ok("init", dir)
	cfg := filepath.Join(dir, "offshoot.yaml")
	data, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, bytes.Replace(data, []byte("storageSize: 1Gi"), []byte("storageSise: 1Gi"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	c.git("commit", "-qam", "typo")
	c.fails(1, "storageSise: unknown field", "sync", "main", "--sha", "1234567")
}

func TestDirtyLocalRepoIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "envs")
	c := &cli{t: t, repo: dir, cache: t.TempDir(), gitDir: dir}
	c.ok("init", dir)
	if err := os.WriteFile(filepath.Join(dir, "offshoot.yaml"), []byte("half-edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.fails(1, "uncommitted changes", "sync", "main", "--sha", "1234567")
}
