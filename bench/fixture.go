// Package bench measures offshoot against environments repos pre-filled
// with many environments, and against the naive per-event CI pipeline
// (git clone, write, kustomize build, git commit, git push). See
// docs/performance.md; `make bench` runs cmd/offshoot-bench.
package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/offshoot-dev/offshoot/clone"
	"github.com/offshoot-dev/offshoot/generator"
)

// fixtureVersion invalidates cached pre-filled repos when their layout changes.
const fixtureVersion = "v1"

// Root is the root branch of the pre-filled repos; every other environment
// is its child.
const Root = "main"

// Epoch is the creation time recorded in pre-filled environments.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Branch is the raw branch name of the i-th pre-filled child (1-based).
// It is already a DNS-1035 name, so it is also its environment name.
func Branch(i int) string { return fmt.Sprintf("feature-%05d", i) }

// SHA is a deterministic 40-hex app commit for (branch index, version).
func SHA(i, v int) string { return fmt.Sprintf("%020x%020x", i, v) }

// Config is the scaffolded offshoot.yaml used by every fixture.
func Config() (*generator.Config, map[string][]byte, error) {
	files, err := generator.Scaffold(generator.InitOptions{})
	if err != nil {
		return nil, nil, err
	}
	cfg, err := generator.ParseConfig(files[generator.ConfigFile])
	if err != nil {
		return nil, nil, err
	}
	return cfg, files, nil
}

// NewEnv is the metadata offshoot would write for a branch created from
// parent (nil: the root) at time now — the same fields planSync sets.
func NewEnv(cfg *generator.Config, branch string, parent *generator.Environment, sha string, now time.Time) *generator.Environment {
	name, err := generator.EnvName(branch)
	if err != nil {
		panic(err)
	}
	inc := now.UTC().Format("20060102t150405z") + fmt.Sprintf("-%04x", len(branch)*7919%65536)
	env := &generator.Environment{
		APIVersion: generator.ConfigAPIVersion, Kind: generator.EnvKind,
		Name: name, Branch: branch, SHA: sha,
		Namespace: cfg.Namespace(name), URL: cfg.URL(name), Protected: cfg.IsProtected(branch),
		CreatedAt: now, UpdatedAt: now,
	}
	var src *clone.Source
	if parent != nil {
		env.Parent, env.ParentEnv = parent.Branch, parent.Name
		src = &clone.Source{Env: parent.Name, Branch: parent.Branch, ServerName: parent.Database.ServerName}
	}
	env.Database = generator.Database{
		Cluster: clone.ClusterName(name, 1), Generation: 1, Incarnation: inc,
		ServerName: clone.ServerName(name, inc), Source: src, ClonedAt: now,
	}
	return env
}

// Prefill writes a bare repository at dir whose branch main holds the
// scaffold plus n environments (the root and n-1 children of it), as one
// commit, with git fast-import: no offshoot, no kustomize, a few seconds
// even for 10,000 environments. Pushes are enabled for git http-backend.
func Prefill(dir string, n int) error {
	cfg, scaffold, err := Config()
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if out, err := exec.Command("git", "init", "-q", "--bare", "--initial-branch=main", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("git init: %v: %s", err, out)
	}
	if out, err := exec.Command("git", "-C", dir, "config", "http.receivepack", "true").CombinedOutput(); err != nil {
		return fmt.Errorf("git config: %v: %s", err, out)
	}
	cmd := exec.Command("git", "-C", dir, "fast-import", "--quiet", "--done")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	msg := fmt.Sprintf("bench: pre-fill %d environments", n)
	ts := Epoch.Unix()
	fmt.Fprintf(w, "commit refs/heads/main\nauthor bench <bench@localhost> %d +0000\ncommitter bench <bench@localhost> %d +0000\ndata %d\n%s\n", ts, ts, len(msg), msg)
	file := func(p string, data []byte) {
		fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n", p, len(data))
		w.Write(data)
		w.WriteByte('\n')
	}
	paths := make([]string, 0, len(scaffold))
	for p := range scaffold {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		file(p, scaffold[p])
	}
	root := NewEnv(cfg, Root, nil, SHA(0, 0), Epoch)
	writeEnv := func(env *generator.Environment) error {
		files, err := generator.Render(cfg, env)
		if err != nil {
			return err
		}
		for rel, data := range files {
			file(generator.EnvDir(env.Name)+"/"+rel, data)
		}
		return nil
	}
	if err := writeEnv(root); err != nil {
		return err
	}
	for i := 1; i < n; i++ {
		if err := writeEnv(NewEnv(cfg, Branch(i), root, SHA(i, 0), Epoch)); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\ndone\n")
	if err := w.Flush(); err != nil {
		return err
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git fast-import: %v: %s", err, stderr.String())
	}
	return nil
}

// Template returns a cached pre-filled repo for n under cacheDir, making
// it if absent. Callers copy it (Stage) before pushing to it.
func Template(cacheDir string, n int) (string, error) {
	dir := filepath.Join(cacheDir, "templates", fmt.Sprintf("envs-%d-%s.git", n, fixtureVersion))
	stamp := filepath.Join(dir, "bench-complete")
	if _, err := os.Stat(stamp); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	if err := Prefill(dir, n); err != nil {
		return "", err
	}
	return dir, os.WriteFile(stamp, nil, 0o644)
}

// Stage copies the template for n into serverRoot/<name>.git and returns name.
func Stage(cacheDir, serverRoot string, n int, name string) (string, error) {
	tmpl, err := Template(cacheDir, n)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(serverRoot, name+".git")
	if err := os.RemoveAll(dst); err != nil {
		return "", err
	}
	if out, err := exec.Command("cp", "-a", tmpl, dst).CombinedOutput(); err != nil {
		return "", fmt.Errorf("cp: %v: %s", err, out)
	}
	return name, nil
}

// Git runs git in dir and returns its trimmed output.
func Git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=ci", "GIT_AUTHOR_EMAIL=ci@localhost",
		"GIT_COMMITTER_NAME=ci", "GIT_COMMITTER_EMAIL=ci@localhost", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}
