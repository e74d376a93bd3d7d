package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/generator"
)

// Naive is the per-event CI script a team would write instead of offshoot:
// clone the environments repo, write the environment's files, build them
// with the kustomize CLI, commit and push with the git CLI. Rendering the
// files reuses generator.Render in-process, which is generous to the
// script (a real one would run a templating tool).
type Naive struct {
	URL       string
	Kustomize string // path to the kustomize v5 CLI
	Work      string // scratch directory
	// Shallow clones with --depth 1 (what actions/checkout does by default;
	// it makes the naive pipeline faster, so the ratio is conservative).
	Shallow bool
}

// NewSHA runs the whole pipeline for one push of sha to branch and returns
// its wall time.
func (n *Naive) NewSHA(cfg *generator.Config, branch, sha string) (time.Duration, error) {
	start := time.Now()
	dir, err := os.MkdirTemp(n.Work, "naive-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	clone := []string{"clone", "-q", "--single-branch", "--branch", "main"}
	if n.Shallow {
		clone = append(clone, "--depth", "1")
	}
	if _, err := Git("", append(clone, n.URL, dir)...); err != nil {
		return 0, err
	}
	name, err := generator.EnvName(branch)
	if err != nil {
		return 0, err
	}
	envDir := filepath.Join(dir, generator.EnvDir(name))
	data, err := os.ReadFile(filepath.Join(envDir, generator.EnvFile))
	if err != nil {
		return 0, err
	}
	var env generator.Environment
	if err := yaml.Unmarshal(data, &env); err != nil {
		return 0, err
	}
	env.SHA, env.UpdatedAt = sha, time.Now().UTC().Truncate(time.Second)
	files, err := generator.Render(cfg, &env)
	if err != nil {
		return 0, err
	}
	for rel, data := range files {
		if err := os.WriteFile(filepath.Join(envDir, rel), data, 0o644); err != nil {
			return 0, err
		}
	}
	build := exec.Command(n.Kustomize, "build", envDir)
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("kustomize build: %v: %s", err, out)
	}
	if _, err := Git(dir, "add", "-A"); err != nil {
		return 0, err
	}
	if _, err := Git(dir, "commit", "-qm", "ci: "+branch+" → "+sha[:12]); err != nil {
		return 0, err
	}
	if _, err := Git(dir, "push", "-q", "origin", "HEAD:main"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
