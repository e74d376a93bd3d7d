package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/offshoot-dev/offshoot/internal/github/githubtest"
)

// Every command reads the environments repo once: parent detection, review
// mode and reporting use the command's one snapshot. Counted on the real
// git server's request log (upload-pack advertisements of the repo).
func TestOneFetchOfTheEnvironmentsRepoPerCommand(t *testing.T) {
	srv, url := envServer(t)
	appURL, err := srv.CreateBare("shop")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("commit", "-q", "--allow-empty", "-m", "one")
	git("commit", "-q", "--allow-empty", "-m", "two")
	mainSHA := git("rev-parse", "HEAD")
	git("checkout", "-q", "-b", "feature/y")
	git("commit", "-q", "--allow-empty", "-m", "y")
	ySHA := git("rev-parse", "HEAD")
	git("checkout", "-q", "-b", "feature/z")
	git("commit", "-q", "--allow-empty", "-m", "z")
	zSHA := git("rev-parse", "HEAD")
	git("push", "-q", appURL, "main", "feature/y", "feature/z")

	gh := githubtest.New(t)
	const envRepo, appRepo = "acme/shop-environments", "acme/shop"
	gh.GitBacked(envRepo, srv.Dir("shop-environments"))
	for b, sha := range map[string]string{"main": mainSHA, "feature/y": ySHA, "feature/z": zSHA} {
		gh.AddBranch(appRepo, b, sha)
	}
	t.Setenv("GITHUB_TOKEN", gh.Token)
	t.Setenv("GITHUB_API_URL", gh.URL)
	c := &cli{t: t, repo: url, cache: t.TempDir(), gitDir: srv.Dir("shop-environments")}
	c.ok("init", url)
	report := []string{"--app-repo", appURL, "--app-github-repo", appRepo, "--github-repo", envRepo}
	for _, step := range []struct {
		name string
		args []string
		want string
	}{
		// The README's own example: a root synced with an abbreviated SHA.
		{"root, short SHA", []string{"sync", "main", "--sha", mainSHA[:7]}, "created envs/main"},
		{"new branch, parent detected", []string{"sync", "feature/y", "--sha", ySHA}, "parent main"},
		{"same event again", []string{"sync", "feature/y", "--sha", ySHA}, "up to date"},
		{"pull-request mode, parent detected", []string{"sync", "feature/z", "--sha", zSHA, "--mode", "pr"}, "opened pull request #"},
		{"list", []string{"list"}, "feature/y"},
	} {
		before := srv.Fetches("shop-environments")
		out := c.ok(append(step.args, report...)...)
		if !strings.Contains(out, step.want) {
			t.Fatalf("%s: output lacks %q:\n%s", step.name, step.want, out)
		}
		if n := srv.Fetches("shop-environments") - before; n != 1 {
			t.Errorf("%s: %d fetches of the environments repo, want 1", step.name, n)
		}
	}
	if st := gh.Statuses(appRepo, ySHA); len(st) == 0 || st[len(st)-1].State != "success" {
		t.Fatalf("feature/y's commit status: %+v", st)
	}
}
