package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/offshoot-dev/offshoot/clone"
	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/argocd"
	"github.com/offshoot-dev/offshoot/internal/gitcache"
)

// Exit codes are decided in one place; "not ready" has its own.
func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errors.New("push failed"), exitError},
		{&generator.UsageError{Msg: "unknown parent"}, exitUsage},
		{&flagError{errors.New("bad flag")}, exitUsage},
		{fmt.Errorf("x: %w", clone.ErrUnsafe), exitUnsafe},
		{fmt.Errorf("%w: 1 of 3 environment(s) did not get Synced and Healthy within 5m0s: main", argocd.ErrNotReady), exitPending},
		{fmt.Errorf("environments repo: %w", gitcache.ErrInsecureCredentials), exitUsage},
		{&generator.PointInTimeError{Reason: "its WAL is not archived yet", RetryAt: time.Now()}, exitPending},
		{&generator.PointInTimeError{Reason: "in the future"}, exitUsage},
	} {
		if got := exitCode(tc.err); got != tc.code {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
	if exitPending == exitError || exitPending == exitUsage || exitPending == exitUnsafe {
		t.Fatal("pending must have a code of its own")
	}
}

// A token is never sent over plain http:// to another host: refused before
// any request, with the way out named.
func TestCLIRefusesCredentialsOverPlainHTTP(t *testing.T) {
	t.Setenv("OFFSHOOT_GIT_TOKEN", "s3cret")
	t.Setenv("OFFSHOOT_ALLOW_INSECURE_HTTP", "")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"list", "--env-repo", "http://git.example.invalid/shop-environments.git", "--cache-dir", t.TempDir()}, &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), "refusing to send credentials over plain http") ||
		!strings.Contains(errb.String(), "OFFSHOOT_ALLOW_INSECURE_HTTP") || strings.Contains(errb.String(), "s3cret") {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
}

// The same rule for GitHub's API and Argo CD's.
func TestCLIRefusesAPITokensOverPlainHTTP(t *testing.T) {
	for _, env := range [][2]string{{"GITHUB_API_URL", "http://ghe.example.invalid/api/v3/"}, {"ARGOCD_SERVER", "http://argocd.example.invalid"}} {
		t.Run(env[0], func(t *testing.T) {
			t.Setenv("GITHUB_TOKEN", "s3cret")
			t.Setenv("ARGOCD_AUTH_TOKEN", "s3cret")
			t.Setenv("GITHUB_API_URL", "")
			t.Setenv("ARGOCD_SERVER", "")
			t.Setenv(env[0], env[1])
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"list", "--env-repo", t.TempDir()}, &out, &errb)
			if code != exitUsage || !strings.Contains(errb.String(), "refusing to send credentials over plain http") {
				t.Fatalf("exit %d\n%s", code, errb.String())
			}
		})
	}
}
