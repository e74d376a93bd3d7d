package githubtest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offshoot-dev/offshoot/internal/github/githubtest"
)

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

func (r *recordingTB) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.errs
	r.errs = nil
	return e
}

func do(t *testing.T, s *githubtest.Server, method, path, auth, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestUnexpectedRequestsFailTheTest(t *testing.T) {
	rec := &recordingTB{TB: t}
	s := githubtest.New(rec)
	s.AddBranch("acme/shop", "main", "aaaa")
	tok := "Bearer " + s.Token
	for _, tc := range []struct {
		method, path, auth, body string
		status                   int
		complaint                string
	}{
		{"GET", "/repos/acme/shop/branches", tok, "", 404, "unexpected request"},
		{"DELETE", "/repos/acme/shop/pulls/1", tok, "", 404, "unexpected request"},
		{"GET", "/user", tok, "", 404, "unexpected request"},
		{"GET", "/repos/acme/shop/pulls", "", "", 401, "without an Authorization"},
		{"GET", "/repos/acme/shop/pulls", "Basic dXNlcjpwYXNz", "", 401, "without an Authorization"},
		{"GET", "/repos/acme/shop/pulls", "Bearer ghp_wrong", "", 401, "unknown token"},
		{"GET", "/repos/acme/shop/pulls?head=main", tok, "", 200, "OWNER:BRANCH"},
		{"POST", "/repos/acme/shop/pulls", tok, "{not json", 400, "not the expected JSON"},
		{"POST", "/app/installations/1/access_tokens", tok, "", 401, "needs a GitHub App JWT"},
		{"POST", "/graphql", tok, `{"query":"query { viewer { login } }"}`, 200, "unexpected GraphQL"},
	} {
		resp, body := do(t, s, tc.method, tc.path, tc.auth, tc.body)
		errs := rec.take()
		if resp.StatusCode != tc.status || len(errs) != 1 || !strings.Contains(errs[0], tc.complaint) {
			t.Errorf("%s %s: %d %s; reported %q", tc.method, tc.path, resp.StatusCode, body, errs)
		}
	}
	// Expected requests are not reported; "token" works as well as "Bearer".
	resp, _ := do(t, s, "GET", "/repos/acme/shop/pulls?state=all", "token "+s.Token, "")
	if resp.StatusCode != 200 || len(rec.take()) != 0 {
		t.Errorf("a valid request: %d", resp.StatusCode)
	}
	// An unknown repository is GitHub's 404, not a test failure.
	resp, body := do(t, s, "GET", "/repos/acme/nope/pulls", tok, "")
	if resp.StatusCode != 404 || !strings.Contains(body, `"message":"Not Found"`) || len(rec.take()) != 0 {
		t.Errorf("unknown repo: %d %s", resp.StatusCode, body)
	}
	if n := len(s.Calls()); n != 12 {
		t.Errorf("%d calls recorded", n)
	}
}

func TestDocumentedShapes(t *testing.T) {
	s := githubtest.New(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.SetNow(func() time.Time { return now })
	s.AddBranch("acme/envs", "main", "m1")
	s.AddBranch("acme/envs", "offshoot/a", "h1")
	tok := "Bearer " + s.Token

	resp, body := do(t, s, "POST", "/repos/acme/envs/pulls", tok, `{"title":"t","head":"acme:offshoot/a","base":"main","body":"b"}`)
	if resp.StatusCode != 201 || resp.Header.Get("Location") != s.URL+"/repos/acme/envs/pulls/1" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	var pr map[string]any
	if err := json.Unmarshal([]byte(body), &pr); err != nil {
		t.Fatal(err)
	}
	head := pr["head"].(map[string]any)
	if pr["number"] != 1.0 || pr["state"] != "open" || pr["html_url"] != "https://github.com/acme/envs/pull/1" ||
		head["ref"] != "offshoot/a" || head["sha"] != "h1" || head["label"] != "acme:offshoot/a" ||
		pr["merged"] != false || pr["mergeable_state"] != "clean" || pr["node_id"] == "" || pr["created_at"] != "2026-01-02T03:04:05Z" {
		t.Errorf("created PR: %s", body)
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "" || resp.Header.Get("Date") != "Fri, 02 Jan 2026 03:04:05 GMT" {
		t.Errorf("headers: %v", resp.Header)
	}
	// The same head and base again: GitHub's duplicate error.
	_, body = do(t, s, "POST", "/repos/acme/envs/pulls", tok, `{"title":"t","head":"offshoot/a","base":"main"}`)
	if !strings.Contains(body, `"message":"A pull request already exists for acme:offshoot/a."`) {
		t.Errorf("duplicate: %s", body)
	}
	// Lists are pull-request-simple: no "merged".
	_, body = do(t, s, "GET", "/repos/acme/envs/pulls?head=acme:offshoot/a", tok, "")
	if strings.Contains(body, `"merged":`) || !strings.Contains(body, `"merged_at":null`) {
		t.Errorf("list: %s", body)
	}

	// Pagination: 5 comments, 2 per page.
	for i := 0; i < 5; i++ {
		s.AddComment("acme/envs", 1, "someone", fmt.Sprint(i))
	}
	resp, body = do(t, s, "GET", "/repos/acme/envs/issues/1/comments?per_page=2&page=2", tok, "")
	link := resp.Header.Get("Link")
	for _, want := range []string{`page=3&per_page=2>; rel="next"`, `page=3&per_page=2>; rel="last"`, `page=1&per_page=2>; rel="prev"`, `page=1&per_page=2>; rel="first"`} {
		if !strings.Contains(link, want) {
			t.Errorf("Link %q lacks %q", link, want)
		}
	}
	var cs []map[string]any
	_ = json.Unmarshal([]byte(body), &cs)
	if len(cs) != 2 || cs[0]["body"] != "2" || cs[1]["body"] != "3" {
		t.Errorf("page 2: %s", body)
	}
	resp, _ = do(t, s, "GET", "/repos/acme/envs/issues/1/comments?per_page=2&page=3", tok, "")
	if l := resp.Header.Get("Link"); strings.Contains(l, `rel="next"`) {
		t.Errorf("last page has a next link: %q", l)
	}

	// Statuses: validation as documented.
	resp, body = do(t, s, "POST", "/repos/acme/envs/statuses/h1", tok, `{"state":"success","description":"`+strings.Repeat("x", 141)+`"}`)
	if resp.StatusCode != 422 || !strings.Contains(body, "description is too long (maximum is 140 characters)") {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	resp, body = do(t, s, "POST", "/repos/acme/envs/statuses/h1", tok, `{"state":"success","context":"offshoot/a"}`)
	if resp.StatusCode != 201 || !strings.Contains(body, `"context":"offshoot/a"`) || !strings.Contains(body, `"creator":{`) {
		t.Errorf("%d %s", resp.StatusCode, body)
	}

	// Deleting a ref closes the PR with that head; a second delete is 422.
	resp, _ = do(t, s, "DELETE", "/repos/acme/envs/git/refs/heads/offshoot/a", tok, "")
	if resp.StatusCode != 204 {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	resp, body = do(t, s, "DELETE", "/repos/acme/envs/git/refs/heads/offshoot/a", tok, "")
	if resp.StatusCode != 422 || !strings.Contains(body, "Reference does not exist") {
		t.Errorf("second delete: %d %s", resp.StatusCode, body)
	}
	if p, _ := s.PR("acme/envs", 1); p.State != "closed" {
		t.Errorf("PR after head deletion: %+v", p)
	}
}

func TestInjectedFailures(t *testing.T) {
	s := githubtest.New(t)
	now := time.Unix(1_800_000_000, 0)
	s.SetNow(func() time.Time { return now })
	s.AddBranch("acme/envs", "main", "m1")
	tok := "Bearer " + s.Token

	s.FailNext(2, 502)
	for i := 0; i < 2; i++ {
		if resp, _ := do(t, s, "GET", "/repos/acme/envs/pulls", tok, ""); resp.StatusCode != 502 {
			t.Errorf("fault %d: %d", i, resp.StatusCode)
		}
	}
	s.RateLimitOnce(time.Second)
	resp, body := do(t, s, "GET", "/repos/acme/envs/pulls", tok, "")
	if resp.StatusCode != 403 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "secondary rate limit") {
		t.Errorf("secondary: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	s.PrimaryRateLimitOnce(now.Add(time.Minute))
	resp, _ = do(t, s, "GET", "/repos/acme/envs/pulls", tok, "")
	if resp.StatusCode != 403 || resp.Header.Get("X-RateLimit-Remaining") != "0" || resp.Header.Get("X-RateLimit-Reset") != fmt.Sprint(now.Add(time.Minute).Unix()) {
		t.Errorf("primary: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := do(t, s, "GET", "/repos/acme/envs/pulls", tok, ""); resp.StatusCode != 200 {
		t.Errorf("after the faults: %d", resp.StatusCode)
	}
	calls := s.Calls()
	if len(calls) != 5 || calls[0].Status != 502 || calls[4].Status != 200 || calls[4].Auth != "token" {
		t.Errorf("calls: %+v", calls)
	}
	if len(s.Writes()) != 0 {
		t.Errorf("writes: %v", s.Writes())
	}
}
