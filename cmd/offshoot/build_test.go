package main

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// goTool is the go command of the toolchain running the tests.
func goTool(t *testing.T) string {
	t.Helper()
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(p); err != nil {
		if p, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to build with")
		}
	}
	return p
}

// The server build (-tags noargocdapi, as the Dockerfile builds it) links
// none of Argo CD's Go code or the Kubernetes packages it pulls in; the
// default build does, through internal/argocd/argoapi only.
func TestServerBuildLeavesOutArgoCD(t *testing.T) {
	goCmd := goTool(t)
	deps := func(tags string) []string {
		out, err := exec.Command(goCmd, "list", "-deps", "-tags", tags, ".").Output()
		if err != nil {
			t.Fatalf("go list -deps -tags %q: %v", tags, err)
		}
		return strings.Fields(string(out))
	}
	heavy := func(p string) bool {
		return strings.HasPrefix(p, "github.com/argoproj/") || strings.HasPrefix(p, "k8s.io/kubectl") ||
			strings.HasPrefix(p, "k8s.io/kubernetes") || strings.HasPrefix(p, "k8s.io/client-go")
	}
	for _, p := range deps("noargocdapi") {
		if heavy(p) || strings.HasSuffix(p, "/internal/argocd/argoapi") {
			t.Errorf("the noargocdapi build links %s", p)
		}
	}
	var api, argo bool
	for _, p := range deps("") {
		api = api || strings.HasSuffix(p, "/internal/argocd/argoapi")
		argo = argo || strings.HasPrefix(p, "github.com/argoproj/argo-cd/v2/pkg/apiclient")
	}
	if !api || !argo {
		t.Errorf("the default build should link argoapi and Argo CD's apiclient (argoapi %v, apiclient %v)", api, argo)
	}
}

// In the server build, status says why it cannot run (and fails), and the
// Argo CD API settings are reported as ignored rather than failing later.
func TestServerBuildStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "offshoot")
	if out, err := exec.Command(goTool(t), "build", "-tags", "noargocdapi", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags noargocdapi: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "status")
	cmd.Env = []string{"ARGOCD_SERVER=127.0.0.1:1", "ARGOCD_AUTH_TOKEN=t", "HOME=" + t.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("status in the server build: %v, want exit code 1; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "built without Argo CD's API client") {
		t.Errorf("status in the server build does not say why it fails:\n%s", stderr.String())
	}
	help, err := exec.Command(bin, "--help").Output()
	if err != nil || !strings.Contains(string(help), "status") || !strings.Contains(string(help), "serve") {
		t.Errorf("--help of the server build: %v\n%s", err, help)
	}
}
