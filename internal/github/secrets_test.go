package github_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/offshoot-dev/offshoot/internal/github"
	"github.com/offshoot-dev/offshoot/internal/github/githubtest"
)

// captureStdio redirects os.Stdout, os.Stderr and the standard logger for
// the duration of fn and returns what was written.
func captureStdio(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldErr, oldLog := os.Stdout, os.Stderr, log.Writer()
	os.Stdout, os.Stderr = w, w
	log.SetOutput(w)
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() {
		os.Stdout, os.Stderr = oldOut, oldErr
		log.SetOutput(oldLog)
	}()
	fn()
	w.Close()
	return <-done
}

// Every operation, succeeding and failing, through both kinds of
// credentials: neither a token, a JWT nor the App's private key appears in
// any error, log line, returned value, printed option or text sent to GitHub.
func TestSecretsAppearNowhere(t *testing.T) {
	key, _ := appKeys(t)
	keyPEM := pkcs1PEM(key)
	var out strings.Builder // everything observable
	logBuf := &syncWriter{b: &strings.Builder{}}
	logger := slog.New(slog.NewTextHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	record := func(vals ...any) {
		for _, v := range vals {
			fmt.Fprintf(&out, "%v\n%+v\n%#v\n", v, v, v)
			if err, ok := v.(error); ok && err != nil {
				out.WriteString(err.Error() + "\n")
			}
		}
	}

	var s *githubtest.Server
	stdio := captureStdio(t, func() {
		s = githubtest.New(t)
		clk := newClock()
		s.SetNow(clk.Now)
		s.AddRepo(envRepoName, githubtest.RepoSettings{})
		s.AddBranch(envRepoName, "main", "0000000000000000000000000000000000000001")
		s.AddBranch(envRepoName, "offshoot/feature-1", sha1)
		s.AddBranch(appRepoName, "main", "0000000000000000000000000000000000000002")
		s.AddBranch(appRepoName, "feature_1", sha1)
		s.InstallApp(4242, 777, &key.PublicKey)
		appPR := s.OpenPR(appRepoName, "feature_1", "main", "Feature 1")

		app, err := github.NewAppAuth(github.AppOptions{AppID: 4242, Repo: envRepo, PrivateKeyPEM: keyPEM, BaseURL: s.URL, Now: clk.Now, Sleep: clk.Sleep, Logger: logger})
		record(app, err)
		badApp, err := github.NewAppAuth(github.AppOptions{AppID: 4242, InstallationID: 31337, PrivateKeyPEM: keyPEM, BaseURL: s.URL, Now: clk.Now, Sleep: clk.Sleep, Logger: logger})
		record(badApp, err)
		_, err = github.NewAppAuth(github.AppOptions{AppID: 4242, InstallationID: 777, PrivateKeyPEM: keyPEM[:len(keyPEM)/2], BaseURL: s.URL}) // truncated key
		record(err)

		for i, auth := range []github.Auth{github.StaticToken(s.Token), app, badApp} {
			o := github.Options{BaseURL: s.URL, Auth: auth, Sleep: clk.Sleep, Now: clk.Now, Logger: logger, MaxRetries: 2}
			record(o)
			c, err := github.New(o)
			record(c, err)
			ctx := context.Background()
			sp := spec("body with a diff")
			sp.AutoMerge = true

			record(c.UpsertPR(ctx, sp))
			record(c.UpsertPR(ctx, sp))
			record(c.FindPR(ctx, envRepo, "offshoot/feature-1", "all"))
			record(c.FindPRForBranch(ctx, appRepo, "feature_1"))
			record(c.UpsertComment(ctx, appRepo, appPR, "env/feature-1", "preview"))
			record(c.UpsertComment(ctx, appRepo, appPR, "env/feature-1", "preview 2"))
			record(c.SetStatus(ctx, appRepo, sha1, "offshoot/feature-1", "success", "ok", "https://argocd.example.com"))
			// Failures of every kind.
			s.RateLimitOnce(time.Second)
			record(c.SetStatus(ctx, appRepo, sha1, "offshoot/feature-1", "pending", "", ""))
			s.FailNext(3, http.StatusBadGateway)
			record(c.SetStatus(ctx, appRepo, sha1, "offshoot/feature-1", "pending", "", ""))
			s.ClearFaults()
			// A comment create is not repeated blindly.
			s.Inject(githubtest.Fault{Method: "POST", Path: "/repos/acme/shop/issues/", Count: 3, Status: http.StatusBadGateway})
			record(c.UpsertComment(ctx, appRepo, appPR, "env/other", "x"))
			s.ClearFaults()
			s.PrimaryRateLimitOnce(clk.Now().Add(3 * time.Hour))
			record(c.ClosePR(ctx, envRepo, 1))
			sp2 := spec("x")
			sp2.Head = "missing"
			record(c.UpsertPR(ctx, sp2))
			s.ClearFaults()
			// Even if GitHub echoed the credential back, it is scrubbed.
			if used := s.Secrets(); i < 2 {
				s.Inject(githubtest.Fault{Status: http.StatusUnauthorized, Message: "Bad credentials: " + used[len(used)-1]})
				record(c.DeleteBranch(ctx, envRepo, "nope"))
			}
			record(c.SetStatus(ctx, appRepo, "deadbeef", "offshoot/x", "pending", "", ""))
			record(c.ClosePR(ctx, envRepo, 1))
			record(c.DeleteBranch(ctx, envRepo, "offshoot/feature-1"))
			record(c.DeleteBranch(ctx, envRepo, "offshoot/feature-1"))
			s.AddBranch(envRepoName, "offshoot/feature-1", sha1)
			s.ClearFaults()
		}
		unreachable, _ := github.New(github.Options{BaseURL: "http://127.0.0.1:1/", Auth: github.StaticToken(s.Token), Sleep: func(time.Duration) {}, Logger: logger})
		record(unreachable.FindPR(context.Background(), envRepo, "x", "open"))
		_, _, err = github.ParseRemote("https://x-access-token:" + s.Token + "@github.com/acme/shop/extra.git")
		record(err)
		_, _, err = github.ParseRemote("https://" + s.Token + "@github.com")
		record(err)
	})

	// What reached GitHub's stored texts counts as output too.
	for _, repo := range []string{envRepoName, appRepoName} {
		for _, p := range s.PRs(repo) {
			record(p)
			for _, c := range s.Comments(repo, p.Number) {
				record(c)
			}
		}
		record(s.Statuses(repo, sha1))
	}
	all := out.String() + "\n" + logBuf.b.String() + "\n" + stdio

	secrets := append(s.Secrets(), string(keyPEM))
	for _, line := range strings.Split(string(keyPEM), "\n") {
		if len(line) > 20 && !strings.HasPrefix(line, "-----") {
			secrets = append(secrets, line) // any fragment of the key's base64
		}
	}
	secrets = append(secrets, base64.StdEncoding.EncodeToString(key.D.Bytes())[:24], key.D.String()[:30], key.Primes[0].String()[:30])
	if len(s.Secrets()) < 2 {
		t.Fatalf("the test did not exercise installation tokens: %d secrets", len(s.Secrets()))
	}
	for _, sec := range secrets {
		if strings.Contains(all, sec) {
			t.Errorf("secret %.8s… appears in the output", sec)
		}
	}
	if strings.Contains(all, "eyJ") { // a JWT's header
		t.Error("a JWT appears in the output")
	}
	// And the output is not empty: errors and logs were produced and redacted.
	for _, want := range []string{"REDACTED", "github: create pull request", "502", "rate limit", "retrying"} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
