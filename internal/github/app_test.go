package github_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offshoot-dev/offshoot/internal/github"
	"github.com/offshoot-dev/offshoot/internal/github/githubtest"
)

var (
	keyOnce sync.Once
	keys    [2]*rsa.PrivateKey
)

// appKeys returns two RSA keys (generated once: keygen is slow under -race).
func appKeys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		for i := range keys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keys[i] = k
		}
	})
	return keys[0], keys[1]
}

func pkcs1PEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func pkcs8PEM(t *testing.T, k *rsa.PrivateKey) []byte {
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b})
}

func TestGitHubAppTokenExchangedOnceCachedAndRefreshed(t *testing.T) {
	key, _ := appKeys(t)
	e := setup(t, githubtest.RepoSettings{})
	e.s.InstallApp(4242, 777, &key.PublicKey)
	auth, err := github.NewAppAuth(github.AppOptions{
		AppID: 4242, Repo: envRepo, // installation discovered from the repository
		PrivateKeyPEM: pkcs1PEM(key), BaseURL: e.s.URL, Now: e.clk.Now, Sleep: e.clk.Sleep,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := github.New(github.Options{BaseURL: e.s.URL, Auth: auth, Now: e.clk.Now, Sleep: e.clk.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, _, err := c.UpsertPR(ctx, spec("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindPR(ctx, envRepo, "offshoot/feature-1", "all"); err != nil {
		t.Fatal(err)
	}
	if n := e.s.TokensIssued(); n != 1 {
		t.Errorf("tokens issued = %d, want 1 (cached)", n)
	}
	if n := count(e.s, "GET", "/repos/acme/shop-environments/installation"); n != 1 {
		t.Errorf("installation looked up %d times", n)
	}
	for _, call := range e.s.Calls() {
		want := "installation"
		if strings.HasPrefix(call.Path, "/app/") || strings.HasSuffix(call.Path, "/installation") {
			want = "jwt"
		}
		if call.Auth != want {
			t.Errorf("%s authenticated as %q, want %q", call, call.Auth, want)
		}
	}
	if prs := e.s.PRs(envRepoName); len(prs) != 1 {
		t.Fatalf("PRs: %+v", prs)
	}

	// 54 minutes later the token (valid for 60) is still used...
	e.clk.Advance(54 * time.Minute)
	if _, err := c.FindPR(ctx, envRepo, "offshoot/feature-1", "open"); err != nil {
		t.Fatal(err)
	}
	if n := e.s.TokensIssued(); n != 1 {
		t.Errorf("tokens issued = %d after 54m, want 1", n)
	}
	// ...within 5 minutes of expiry it is replaced (the server would fail
	// the test on an expired token, and verifies every JWT's signature,
	// iat and exp against the same clock).
	e.clk.Advance(2 * time.Minute)
	if _, err := c.FindPR(ctx, envRepo, "offshoot/feature-1", "open"); err != nil {
		t.Fatal(err)
	}
	if n := e.s.TokensIssued(); n != 2 {
		t.Errorf("tokens issued = %d after 56m, want 2", n)
	}
	if n := count(e.s, "GET", "/installation"); n != 1 {
		t.Errorf("installation looked up %d times; the id is remembered", n)
	}
	if n := count(e.s, "POST", "/app/installations/777/access_tokens"); n != 2 {
		t.Errorf("token exchanges = %d", n)
	}
}

func TestGitHubAppConcurrentCallersShareOneExchange(t *testing.T) {
	key, _ := appKeys(t)
	e := setup(t, githubtest.RepoSettings{})
	e.s.InstallApp(1, 2, &key.PublicKey)
	auth, err := github.NewAppAuth(github.AppOptions{AppID: 1, InstallationID: 2, PrivateKeyPEM: pkcs8PEM(t, key), BaseURL: e.s.URL})
	if err != nil {
		t.Fatal(err)
	}
	// AppAuth uses the wall clock; keep the server on it too.
	e.s.SetNow(time.Now)
	var wg sync.WaitGroup
	toks := make([]string, 8)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := auth.Token(context.Background())
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	if e.s.TokensIssued() != 1 {
		t.Errorf("tokens issued = %d", e.s.TokensIssued())
	}
	for _, tok := range toks {
		if tok != toks[0] || !strings.HasPrefix(tok, "ghs_") {
			t.Errorf("tokens differ: %q", toks)
		}
	}
}

func TestGitHubAppErrors(t *testing.T) {
	key, other := appKeys(t)
	e := setup(t, githubtest.RepoSettings{})
	e.s.InstallApp(4242, 777, &key.PublicKey)
	ctx := context.Background()

	if _, err := github.NewAppAuth(github.AppOptions{AppID: 4242, InstallationID: 777, PrivateKeyPEM: []byte("not a key"), BaseURL: e.s.URL}); err == nil {
		t.Error("a bad PEM was accepted")
	}
	if _, err := github.NewAppAuth(github.AppOptions{AppID: 4242, PrivateKeyPEM: pkcs1PEM(key)}); err == nil {
		t.Error("neither installation id nor repository: accepted")
	}
	// Unknown installation: 404, naming the exchange.
	a, err := github.NewAppAuth(github.AppOptions{AppID: 4242, InstallationID: 999, PrivateKeyPEM: pkcs1PEM(key), BaseURL: e.s.URL, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Token(ctx)
	if want := "github: create an installation token for GitHub App 4242 installation 999: 404 Not Found"; err == nil || err.Error() != want {
		t.Errorf("err = %v", err)
	}
	// Through a Client, the failing call is named first.
	c, _ := github.New(github.Options{BaseURL: e.s.URL, Auth: a, Now: e.clk.Now, Sleep: e.clk.Sleep})
	_, err = c.FindPR(ctx, envRepo, "x", "open")
	if want := "github: find pull request acme/shop-environments x: create an installation token for GitHub App 4242 installation 999: 404 Not Found"; err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
	// Not installed on the repository.
	a, _ = github.NewAppAuth(github.AppOptions{AppID: 4242, Repo: github.Repo{Owner: "acme", Name: "nope"}, PrivateKeyPEM: pkcs1PEM(key), BaseURL: e.s.URL, Now: e.clk.Now})
	if _, err := a.Token(ctx); err == nil || !strings.Contains(err.Error(), "find the installation of GitHub App 4242 on acme/nope: 404") {
		t.Errorf("err = %v", err)
	}
	_ = other
}

// The fake rejects (and reports) a JWT signed with another key: proven
// with a recording TB so that this test itself does not fail.
func TestFakeVerifiesTheJWTSignature(t *testing.T) {
	key, other := appKeys(t)
	rec := &recordingTB{TB: t}
	s := githubtest.New(rec)
	clk := newClock()
	s.SetNow(clk.Now)
	s.InstallApp(7, 8, &key.PublicKey)
	a, err := github.NewAppAuth(github.AppOptions{AppID: 7, InstallationID: 8, PrivateKeyPEM: pkcs1PEM(other), BaseURL: s.URL, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Token(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("err = %v", err)
	}
	if errs := rec.Errors(); len(errs) != 1 || !strings.Contains(errs[0], "signature does not verify") {
		t.Errorf("fake reported %q", errs)
	}
	// The right key, but a clock 11 minutes apart: exp too far ahead for the server.
	a, _ = github.NewAppAuth(github.AppOptions{AppID: 7, InstallationID: 8, PrivateKeyPEM: pkcs1PEM(key), BaseURL: s.URL,
		Now: func() time.Time { return clk.Now().Add(11 * time.Minute) }})
	_, _ = a.Token(context.Background())
	if errs := rec.Errors(); len(errs) != 2 || !strings.Contains(errs[1], "iat") {
		t.Errorf("fake reported %q", errs)
	}
}

type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}
