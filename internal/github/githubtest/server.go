// Package githubtest is an in-memory GitHub REST (and one GraphQL mutation)
// server for tests. It implements only the endpoints offshoot calls, with
// GitHub's documented paths, status codes, error bodies and JSON fields:
//
//	GET    /repos/{o}/{r}/pulls?head=OWNER:BRANCH&state=&per_page=&page=
//	POST   /repos/{o}/{r}/pulls
//	GET    /repos/{o}/{r}/pulls/{n}
//	PATCH  /repos/{o}/{r}/pulls/{n}
//	PUT    /repos/{o}/{r}/pulls/{n}/merge
//	POST   /repos/{o}/{r}/issues/{n}/labels
//	GET    /repos/{o}/{r}/issues/{n}/comments   (paginated, Link header)
//	POST   /repos/{o}/{r}/issues/{n}/comments
//	PATCH  /repos/{o}/{r}/issues/comments/{id}
//	POST   /repos/{o}/{r}/statuses/{sha}
//	DELETE /repos/{o}/{r}/git/refs/heads/{branch}
//	GET    /repos/{o}/{r}/installation          (App JWT)
//	POST   /app/installations/{id}/access_tokens (App JWT, verified with the App's public key)
//	POST   /graphql                             (mutation enablePullRequestAutoMerge only)
//
// State (repositories, branches, PRs, labels, comments, statuses, App
// installations and tokens) lives in memory. Any request the server does not
// expect — an unknown path or method, a missing, wrong or expired
// credential, a JWT where a token belongs or the reverse, malformed JSON —
// fails the test with t.Errorf. Failures can be injected (Inject, FailNext,
// RateLimitOnce, PrimaryRateLimitOnce) and every call is recorded (Calls,
// Writes).
package githubtest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// HTMLBase is the host used in html_url fields.
const HTMLBase = "https://github.com"

const (
	tokenLogin = "offshoot-bot"      // the user behind Server.Token
	appLogin   = "offshoot-app[bot]" // the user behind installation tokens
)

// RepoSettings are a repository's settings that matter to the endpoints.
type RepoSettings struct {
	// AllowAutoMerge: the repository allows auto-merge (else the GraphQL
	// mutation fails with "Auto merge is not allowed for this repository").
	AllowAutoMerge bool
	// RequireChecks: the base branch has required checks, so a new or
	// updated PR is "blocked" (auto-merge can be armed) instead of "clean"
	// (mergeable at once; GitHub refuses to arm auto-merge then).
	RequireChecks bool
}

// PR is a pull request's state.
type PR struct {
	Number          int
	NodeID          string
	State           string // open, closed
	Title, Body     string
	Head, Base      string
	HeadSHA         string
	Labels          []string
	Merged          bool
	MergeableState  string // clean, blocked, unstable, dirty, behind, unknown
	AutoMerge       bool
	AutoMergeMethod string // MERGE, SQUASH, REBASE
	MergeMethod     string // how it was merged through the API
}

// Comment is an issue comment.
type Comment struct {
	ID   int64
	User string
	Body string
}

// Status is a commit status.
type Status struct {
	ID                                     int64
	State, Context, Description, TargetURL string
	Creator                                string
}

// Call is one recorded request.
type Call struct {
	Method string
	Path   string // decoded path
	Query  string // raw query
	Body   string
	Auth   string // "token", "installation", "jwt", "" (none/invalid)
	Status int    // the status answered
}

// IsWrite reports whether the call is anything but a read.
func (c Call) IsWrite() bool {
	if c.Method == http.MethodGet || c.Method == http.MethodHead {
		return false
	}
	// POST /app/installations/{id}/access_tokens mints a token: not a repository write.
	return !strings.HasSuffix(c.Path, "/access_tokens")
}

func (c Call) String() string {
	s := c.Method + " " + c.Path
	if c.Query != "" {
		s += "?" + c.Query
	}
	return s
}

// Fault is an injected failure.
type Fault struct {
	Method string // "" matches any
	Path   string // prefix of the decoded path; "" matches any
	Count  int    // how many matching requests (default 1)
	Status int
	// After: process the request first, then answer Status (a write that
	// happened although the client saw an error).
	After bool
	// RetryAfter > 0: a secondary rate limit (403, Retry-After in seconds).
	RetryAfter time.Duration
	// Reset non-zero: a primary rate limit (403, X-RateLimit-Remaining: 0,
	// X-RateLimit-Reset: Reset).
	Reset   time.Time
	Message string
}

// Server is the fake GitHub. Its zero value is not usable; call New.
type Server struct {
	URL   string // API base URL (use as BaseURL); GraphQL is URL + "/graphql"
	Token string // a personal access token the server accepts

	t   testing.TB
	srv *httptest.Server

	mu            sync.Mutex
	now           func() time.Time
	repos         map[string]*repo
	nextID        int64
	calls         []Call
	faults        []*Fault
	apps          map[int64]*rsa.PublicKey // app id → public key
	installations map[int64]int64          // installation id → app id
	tokens        map[string]time.Time     // installation token → expiry
	tokensIssued  int
	rate          rateState
}

type rateState struct {
	limit, remaining int
	reset            time.Time
}

type repo struct {
	owner, name string
	gitDir      string // GitBacked: branches mirror this bare repository
	settings    RepoSettings
	branches    map[string]string
	commits     map[string]bool
	nextNumber  int
	prs         map[int]*pr
	comments    map[int][]*comment
	labels      map[string]string // lower → name
	statuses    map[string][]*status
}

type pr struct {
	PR
	id                 int64
	user               string
	createdAt, updated time.Time
	closedAt, mergedAt time.Time
	mergeCommitSHA     string
	autoMergeEnabledBy string
}

type comment struct {
	Comment
	createdAt, updatedAt time.Time
}

type status struct {
	Status
	createdAt time.Time
}

// New starts a server that reports unexpected requests to t, and stops it
// when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t: t, now: time.Now, repos: map[string]*repo{}, nextID: 1000,
		apps: map[int64]*rsa.PublicKey{}, installations: map[int64]int64{}, tokens: map[string]time.Time{},
		Token: "ghp_" + randomHex(18),
	}
	s.rate = rateState{limit: 5000, remaining: 5000}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// SetNow sets the server's clock (JWT validity, token expiry, rate-limit
// resets, timestamps, the Date header).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// AddRepo creates (or reconfigures) the repository "owner/name".
func (s *Server) AddRepo(fullName string, settings RepoSettings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(fullName).settings = settings
}

// AddBranch creates or moves a branch (a push); open PRs with that head
// follow the new SHA, like a force-push. The repository is created if needed.
func (s *Server) AddBranch(fullName, branch, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(fullName)
	r.branches[branch] = sha
	r.commits[sha] = true
	for _, p := range r.prs {
		if p.State == "open" && p.Head == branch {
			p.HeadSHA = sha
			p.updated = s.now()
			p.MergeableState = initialMergeState(r)
		}
	}
}

// GitBacked makes the repository's branches mirror a real bare git
// repository (read before every request), as GitHub sees what is pushed
// to it: a push over git is visible to the next API call.
func (s *Server) GitBacked(fullName, bareDir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(fullName).gitDir = bareDir
}

// syncGit refreshes git-backed repositories' branches; s.mu is held.
func (s *Server) syncGit() {
	for _, r := range s.repos {
		if r.gitDir == "" {
			continue
		}
		out, err := exec.Command("git", "--git-dir", r.gitDir, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads").Output()
		if err != nil {
			s.t.Errorf("githubtest: read branches of %s: %v", r.gitDir, err)
			continue
		}
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			branch, sha, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			seen[branch] = true
			r.commits[sha] = true
			if r.branches[branch] == sha {
				continue
			}
			r.branches[branch] = sha
			for _, p := range r.prs {
				if p.State == "open" && p.Head == branch {
					p.HeadSHA = sha
					p.updated = s.now()
					p.MergeableState = initialMergeState(r)
				}
			}
		}
		for b := range r.branches {
			if !seen[b] {
				delete(r.branches, b)
			}
		}
	}
}

// AddCommit makes sha known (commit statuses need an existing commit).
func (s *Server) AddCommit(fullName, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(fullName).commits[sha] = true
}

// HasBranch reports whether the branch exists.
func (s *Server) HasBranch(fullName, branch string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncGit()
	_, ok := s.repo(fullName).branches[branch]
	return ok
}

// PRs returns the repository's pull requests by number.
func (s *Server) PRs(fullName string) []PR {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(fullName)
	var out []PR
	for _, p := range r.prs {
		out = append(out, p.view())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}

// PR returns one pull request.
func (s *Server) PR(fullName string, n int) (PR, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.repo(fullName).prs[n]
	if !ok {
		return PR{}, false
	}
	return p.view(), true
}

func (p *pr) view() PR {
	v := p.PR
	v.Labels = append([]string(nil), p.Labels...)
	return v
}

// OpenPR opens a pull request as a person would (e.g. the app repo's PR for
// a branch); both branches must exist. It returns the number.
func (s *Server) OpenPR(fullName, head, base, title string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(fullName)
	if r.branches[head] == "" || r.branches[base] == "" {
		s.t.Errorf("githubtest: OpenPR(%s, %s, %s): both branches must exist (AddBranch)", fullName, head, base)
		return 0
	}
	return s.newPR(r, head, base, title, "", "a-developer").Number
}

func (s *Server) newPR(r *repo, head, base, title, body, user string) *pr {
	r.nextNumber++
	now := s.now()
	id := s.id()
	p := &pr{PR: PR{Number: r.nextNumber, NodeID: fmt.Sprintf("PR_kwfake%d", id), State: "open", Title: title, Body: body,
		Head: head, Base: base, HeadSHA: r.branches[head], MergeableState: initialMergeState(r)},
		id: id, user: user, createdAt: now, updated: now}
	r.prs[p.Number] = p
	return p
}

// Secrets returns every credential the server knows: Token and the
// installation tokens it issued (for tests asserting they leak nowhere).
func (s *Server) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []string{s.Token}
	for tok := range s.tokens {
		out = append(out, tok)
	}
	sort.Strings(out[1:])
	return out
}

// Comments returns the comments on issue/PR n, oldest first.
func (s *Server) Comments(fullName string, n int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.repo(fullName).comments[n] {
		out = append(out, c.Comment)
	}
	return out
}

// AddComment adds a comment by user (e.g. a human) to PR n.
func (s *Server) AddComment(fullName string, n int, user, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addComment(s.repo(fullName), n, user, body).ID
}

// Statuses returns the statuses set on sha, oldest first.
func (s *Server) Statuses(fullName, sha string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Status
	for _, st := range s.repo(fullName).statuses[sha] {
		out = append(out, st.Status)
	}
	return out
}

// Calls returns every request so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Writes returns the calls that are not reads (see Call.IsWrite).
func (s *Server) Writes() []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.IsWrite() {
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets the recorded calls.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// Inject queues a failure.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Count <= 0 {
		f.Count = 1
	}
	s.faults = append(s.faults, &f)
}

// ClearFaults drops the injected failures not yet used.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// FailNext answers the next n requests with status (before processing them).
func (s *Server) FailNext(n, status int) { s.Inject(Fault{Count: n, Status: status}) }

// RateLimitOnce answers the next request with a secondary rate limit:
// 403, Retry-After: retryAfter (whole seconds).
func (s *Server) RateLimitOnce(retryAfter time.Duration) {
	s.Inject(Fault{Status: http.StatusForbidden, RetryAfter: retryAfter})
}

// PrimaryRateLimitOnce answers the next request with an exhausted primary
// quota: 403, X-RateLimit-Remaining: 0, X-RateLimit-Reset: reset.
func (s *Server) PrimaryRateLimitOnce(reset time.Time) {
	s.Inject(Fault{Status: http.StatusForbidden, Reset: reset})
}

// SetRateLimit sets the primary quota: remaining requests until reset, then
// limit again. With remaining 0, requests before reset get 403s.
func (s *Server) SetRateLimit(limit, remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate = rateState{limit: limit, remaining: remaining, reset: reset}
}

// MergePR merges PR n as a person would in the web UI.
func (s *Server) MergePR(fullName string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(fullName)
	p, ok := r.prs[n]
	if !ok || p.State != "open" {
		s.t.Errorf("githubtest: MergePR(%s, %d): no such open PR", fullName, n)
		return
	}
	s.merge(r, p, "merge")
}

// SetMergeState sets PR n's mergeable_state (clean, blocked, unstable,
// behind, dirty, unknown). A PR with auto-merge armed is merged when it
// becomes clean, as GitHub does once the required checks pass.
func (s *Server) SetMergeState(fullName string, n int, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(fullName)
	p, ok := r.prs[n]
	if !ok {
		s.t.Errorf("githubtest: SetMergeState(%s, %d): no such PR", fullName, n)
		return
	}
	p.MergeableState = state
	if state == "clean" && p.AutoMerge && p.State == "open" {
		s.merge(r, p, strings.ToLower(p.AutoMergeMethod))
	}
}

// InstallApp registers a GitHub App (its JWTs are verified with publicKey)
// installed with installationID on every repository of the server.
func (s *Server) InstallApp(appID, installationID int64, publicKey *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appID] = publicKey
	s.installations[installationID] = appID
}

// TokensIssued counts the installation tokens minted.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokensIssued
}

// ---- internals ----

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func (s *Server) repo(fullName string) *repo {
	key := strings.ToLower(fullName)
	if r, ok := s.repos[key]; ok {
		return r
	}
	owner, name, _ := strings.Cut(fullName, "/")
	r := &repo{owner: owner, name: name, branches: map[string]string{}, commits: map[string]bool{},
		prs: map[int]*pr{}, comments: map[int][]*comment{}, labels: map[string]string{}, statuses: map[string][]*status{}}
	s.repos[key] = r
	return r
}

func (s *Server) id() int64 { s.nextID++; return s.nextID }

func initialMergeState(r *repo) string {
	if r.settings.RequireChecks {
		return "blocked"
	}
	return "clean"
}

func (s *Server) merge(r *repo, p *pr, method string) {
	now := s.now()
	p.State, p.Merged, p.MergeMethod = "closed", true, method
	p.mergedAt, p.closedAt, p.updated = now, now, now
	p.mergeCommitSHA = randomHex(20)
	r.commits[p.mergeCommitSHA] = true
	if _, ok := r.branches[p.Base]; ok {
		r.branches[p.Base] = p.mergeCommitSHA
	}
}

func (s *Server) addComment(r *repo, n int, user, body string) *comment {
	now := s.now()
	c := &comment{Comment: Comment{ID: s.id(), User: user, Body: body}, createdAt: now, updatedAt: now}
	r.comments[n] = append(r.comments[n], c)
	return c
}

type reqCtx struct {
	w      http.ResponseWriter
	r      *http.Request
	body   []byte
	call   *Call
	user   string // login of the credential
	appID  int64  // for JWT requests
	parts  []string
	status int
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body)})
	call := &s.calls[len(s.calls)-1]
	c := &reqCtx{w: w, r: r, body: body, call: call, parts: strings.Split(strings.Trim(r.URL.Path, "/"), "/")}
	defer func() { call.Status = c.status }()
	s.syncGit()

	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	w.Header().Set("X-GitHub-Request-Id", strings.ToUpper(randomHex(8)))
	w.Header().Set("X-GitHub-Api-Version-Selected", "2022-11-28")

	route, ok := s.route(r.Method, c.parts)
	if !ok {
		s.t.Errorf("githubtest: unexpected request %s %s", r.Method, r.URL.Path)
		s.fail(c, http.StatusNotFound, "Not Found")
		return
	}
	if !s.authenticate(c, route.jwt) {
		return
	}
	if s.quota(c) {
		return
	}
	f := s.takeFault(r.Method, r.URL.Path)
	if f != nil && !f.After {
		s.answerFault(c, f)
		return
	}
	if f != nil {
		// Process, but answer the fault instead.
		rec := httptest.NewRecorder()
		inner := *c
		inner.w = rec
		route.h(&inner)
		s.answerFault(c, f)
		return
	}
	route.h(c)
}

type route struct {
	jwt bool
	h   func(*reqCtx)
}

func (s *Server) route(method string, p []string) (route, bool) {
	n := len(p)
	is := func(m string) bool { return method == m }
	switch {
	case n == 1 && p[0] == "graphql" && is("POST"):
		return route{h: s.graphql}, true
	case n == 4 && p[0] == "app" && p[1] == "installations" && p[3] == "access_tokens" && is("POST"):
		return route{jwt: true, h: s.createInstallationToken}, true
	case n < 4 || p[0] != "repos":
		return route{}, false
	}
	switch rest := p[3:]; {
	case len(rest) == 1 && rest[0] == "installation" && is("GET"):
		return route{jwt: true, h: s.repoInstallation}, true
	case len(rest) == 1 && rest[0] == "pulls" && is("GET"):
		return route{h: s.listPulls}, true
	case len(rest) == 1 && rest[0] == "pulls" && is("POST"):
		return route{h: s.createPull}, true
	case len(rest) == 2 && rest[0] == "pulls" && is("GET"):
		return route{h: s.getPull}, true
	case len(rest) == 2 && rest[0] == "pulls" && is("PATCH"):
		return route{h: s.updatePull}, true
	case len(rest) == 3 && rest[0] == "pulls" && rest[2] == "merge" && is("PUT"):
		return route{h: s.mergePull}, true
	case len(rest) == 3 && rest[0] == "issues" && rest[2] == "labels" && is("POST"):
		return route{h: s.addLabels}, true
	case len(rest) == 3 && rest[0] == "issues" && rest[1] != "comments" && rest[2] == "comments" && is("GET"):
		return route{h: s.listComments}, true
	case len(rest) == 3 && rest[0] == "issues" && rest[1] != "comments" && rest[2] == "comments" && is("POST"):
		return route{h: s.createComment}, true
	case len(rest) == 3 && rest[0] == "issues" && rest[1] == "comments" && is("PATCH"):
		return route{h: s.updateComment}, true
	case len(rest) == 2 && rest[0] == "statuses" && is("POST"):
		return route{h: s.createStatus}, true
	case len(rest) == 3 && rest[0] == "commits" && rest[2] == "statuses" && is("GET"):
		return route{h: s.listStatuses}, true
	case len(rest) >= 4 && rest[0] == "git" && rest[1] == "refs" && rest[2] == "heads" && is("DELETE"):
		return route{h: s.deleteRef}, true
	}
	return route{}, false
}

// authenticate checks the Authorization header: an App JWT for the App
// endpoints, a token (Server.Token or an unexpired installation token) for
// everything else.
func (s *Server) authenticate(c *reqCtx, wantJWT bool) bool {
	h := c.r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	if h == "" || cred == "" || (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) {
		s.t.Errorf("githubtest: %s %s without an Authorization: Bearer|token header", c.r.Method, c.r.URL.Path)
		s.fail(c, http.StatusUnauthorized, "Requires authentication")
		return false
	}
	isJWT := strings.Count(cred, ".") == 2 && strings.HasPrefix(cred, "eyJ")
	if wantJWT {
		if !isJWT {
			s.t.Errorf("githubtest: %s %s needs a GitHub App JWT, got another credential", c.r.Method, c.r.URL.Path)
			s.fail(c, http.StatusUnauthorized, "A JSON web token could not be decoded")
			return false
		}
		if !strings.EqualFold(scheme, "bearer") {
			s.t.Errorf("githubtest: a JWT must be sent as Bearer")
			s.fail(c, http.StatusUnauthorized, "A JSON web token could not be decoded")
			return false
		}
		appID, err := s.verifyJWT(cred)
		if err != nil {
			s.t.Errorf("githubtest: %s %s: invalid App JWT: %v", c.r.Method, c.r.URL.Path, err)
			s.fail(c, http.StatusUnauthorized, err.Error())
			return false
		}
		c.appID, c.user, c.call.Auth = appID, "app", "jwt"
		return true
	}
	switch {
	case isJWT:
		s.t.Errorf("githubtest: %s %s with an App JWT; it needs an installation token", c.r.Method, c.r.URL.Path)
		s.fail(c, http.StatusForbidden, "Resource not accessible by integration")
		return false
	case cred == s.Token:
		c.user, c.call.Auth = tokenLogin, "token"
		return true
	}
	exp, ok := s.tokens[cred]
	if !ok {
		s.t.Errorf("githubtest: %s %s with an unknown token", c.r.Method, c.r.URL.Path)
		s.fail(c, http.StatusUnauthorized, "Bad credentials")
		return false
	}
	if !s.now().Before(exp) {
		s.t.Errorf("githubtest: %s %s with an installation token that expired at %s", c.r.Method, c.r.URL.Path, exp.UTC().Format(time.RFC3339))
		s.fail(c, http.StatusUnauthorized, "Bad credentials")
		return false
	}
	c.user, c.call.Auth = appLogin, "installation"
	return true
}

// verifyJWT checks an RS256 JWT as GitHub does: signature by the App's key
// (found by iss), iat not in the future, exp in the future and at most 10
// minutes ahead.
func (s *Server) verifyJWT(tok string) (int64, error) {
	parts := strings.Split(tok, ".")
	dec := base64.RawURLEncoding
	hb, err1 := dec.DecodeString(parts[0])
	pb, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, fmt.Errorf("A JSON web token could not be decoded")
	}
	var head struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat *int64          `json:"iat"`
		Exp *int64          `json:"exp"`
	}
	if json.Unmarshal(hb, &head) != nil || json.Unmarshal(pb, &claims) != nil {
		return 0, fmt.Errorf("A JSON web token could not be decoded")
	}
	if head.Alg != "RS256" {
		return 0, fmt.Errorf("'alg' must be RS256, got %q", head.Alg)
	}
	issStr := strings.Trim(string(claims.Iss), `"`)
	appID, err := strconv.ParseInt(issStr, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("'Issuer' claim ('iss') must be the App ID, got %s", claims.Iss)
	}
	key, ok := s.apps[appID]
	if !ok {
		return 0, fmt.Errorf("Integration not found (app %d)", appID)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		return 0, fmt.Errorf("signature does not verify with app %d's public key", appID)
	}
	now := s.now().Unix()
	if claims.Iat == nil || *claims.Iat > now {
		return 0, fmt.Errorf("'Issued at' claim ('iat') must be an Integer representing a time in the past")
	}
	if claims.Exp == nil || *claims.Exp <= now {
		return 0, fmt.Errorf("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
	}
	if *claims.Exp > now+600 {
		return 0, fmt.Errorf("'Expiration time' claim ('exp') is too far in the future")
	}
	return appID, nil
}

// quota applies the primary rate limit and sets the X-RateLimit-* headers.
// true: answered (403).
func (s *Server) quota(c *reqCtx) bool {
	now := s.now()
	if s.rate.reset.IsZero() || !now.Before(s.rate.reset) {
		if !s.rate.reset.IsZero() {
			s.rate.remaining = s.rate.limit
		}
		s.rate.reset = now.Add(time.Hour)
	}
	resource := "core"
	if c.parts[0] == "graphql" {
		resource = "graphql"
	}
	h := c.w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.rate.limit))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.rate.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", resource)
	if s.rate.remaining <= 0 {
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", strconv.Itoa(s.rate.limit))
		s.writeJSON(c, http.StatusForbidden, map[string]any{
			"message":           "API rate limit exceeded for user ID 1.",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits",
		})
		return true
	}
	s.rate.remaining--
	h.Set("X-RateLimit-Remaining", strconv.Itoa(s.rate.remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.rate.limit-s.rate.remaining))
	return false
}

func (s *Server) takeFault(method, path string) *Fault {
	for i, f := range s.faults {
		if (f.Method == "" || f.Method == method) && strings.HasPrefix(path, f.Path) {
			f.Count--
			if f.Count <= 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			return f
		}
	}
	return nil
}

func (s *Server) answerFault(c *reqCtx, f *Fault) {
	h := c.w.Header()
	switch {
	case f.RetryAfter > 0:
		h.Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
		s.writeJSON(c, f.Status, map[string]any{
			"message":           orDefault(f.Message, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."),
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
		})
	case !f.Reset.IsZero():
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", h.Get("X-RateLimit-Limit"))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(f.Reset.Unix(), 10))
		s.writeJSON(c, f.Status, map[string]any{
			"message":           orDefault(f.Message, "API rate limit exceeded for user ID 1."),
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits",
		})
	default:
		s.fail(c, f.Status, orDefault(f.Message, http.StatusText(f.Status)))
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (s *Server) writeJSON(c *reqCtx, status int, v any) {
	c.status = status
	c.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	c.w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(c.w).Encode(v)
	}
}

func (s *Server) noContent(c *reqCtx) {
	c.status = http.StatusNoContent
	c.w.WriteHeader(http.StatusNoContent)
}

// fail answers GitHub's error shape {"message", "documentation_url"[, "errors"]}.
func (s *Server) fail(c *reqCtx, status int, msg string, errs ...map[string]string) {
	body := map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest"}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	s.writeJSON(c, status, body)
}

func (s *Server) validationFailed(c *reqCtx, errs ...map[string]string) {
	s.fail(c, http.StatusUnprocessableEntity, "Validation Failed", errs...)
}

func (s *Server) decode(c *reqCtx, v any) bool {
	if err := json.Unmarshal(c.body, v); err != nil {
		s.t.Errorf("githubtest: %s %s: body is not the expected JSON: %v: %s", c.r.Method, c.r.URL.Path, err, c.body)
		s.fail(c, http.StatusBadRequest, "Problems parsing JSON")
		return false
	}
	return true
}

// existingRepo returns the request's repository; 404 when unknown.
func (s *Server) existingRepo(c *reqCtx) (*repo, bool) {
	r, ok := s.repos[strings.ToLower(c.parts[1]+"/"+c.parts[2])]
	if !ok {
		s.fail(c, http.StatusNotFound, "Not Found")
	}
	return r, ok
}

func (s *Server) number(c *reqCtx, i int) (int, bool) {
	n, err := strconv.Atoi(c.parts[i])
	if err != nil || n <= 0 {
		s.fail(c, http.StatusNotFound, "Not Found")
		return 0, false
	}
	return n, true
}

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func userJSON(login string) map[string]any {
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	return map[string]any{"login": login, "id": len(login), "type": typ, "html_url": HTMLBase + "/" + login}
}

func (s *Server) repoJSON(r *repo) map[string]any {
	return map[string]any{
		"id": len(r.owner) + len(r.name), "name": r.name, "full_name": r.owner + "/" + r.name,
		"owner":    map[string]any{"login": r.owner, "type": "Organization"},
		"html_url": HTMLBase + "/" + r.owner + "/" + r.name, "url": s.URL + "/repos/" + r.owner + "/" + r.name,
		"private": true, "allow_auto_merge": r.settings.AllowAutoMerge,
	}
}

func (s *Server) labelsJSON(r *repo, names []string) []map[string]any {
	out := []map[string]any{}
	for _, n := range names {
		out = append(out, map[string]any{"id": len(n), "node_id": "LA_" + n, "name": n, "color": "ededed", "default": false,
			"url": s.URL + "/repos/" + r.owner + "/" + r.name + "/labels/" + url.PathEscape(n)})
	}
	return out
}

// prJSON renders "pull-request-simple" (lists) or, full, "pull-request".
func (s *Server) prJSON(r *repo, p *pr, full bool) map[string]any {
	apiURL := fmt.Sprintf("%s/repos/%s/%s/pulls/%d", s.URL, r.owner, r.name, p.Number)
	ref := func(branch, sha string) map[string]any {
		return map[string]any{"label": r.owner + ":" + branch, "ref": branch, "sha": sha, "user": map[string]any{"login": r.owner}, "repo": s.repoJSON(r)}
	}
	baseSHA := r.branches[p.Base]
	m := map[string]any{
		"url": apiURL, "id": p.id, "node_id": p.NodeID,
		"html_url":  fmt.Sprintf("%s/%s/%s/pull/%d", HTMLBase, r.owner, r.name, p.Number),
		"issue_url": fmt.Sprintf("%s/repos/%s/%s/issues/%d", s.URL, r.owner, r.name, p.Number),
		"number":    p.Number, "state": p.State, "locked": false, "title": p.Title,
		"user": userJSON(p.user), "body": nullable(p.Body), "labels": s.labelsJSON(r, p.Labels),
		"created_at": ts(p.createdAt), "updated_at": ts(p.updated), "closed_at": ts(p.closedAt), "merged_at": ts(p.mergedAt),
		"merge_commit_sha": nullable(p.mergeCommitSHA), "draft": false,
		"head": ref(p.Head, p.HeadSHA), "base": ref(p.Base, baseSHA),
		"author_association": "NONE", "auto_merge": nil,
	}
	if p.AutoMerge {
		m["auto_merge"] = map[string]any{"enabled_by": userJSON(p.autoMergeEnabledBy), "merge_method": strings.ToLower(p.AutoMergeMethod), "commit_title": "", "commit_message": ""}
	}
	if full {
		m["merged"] = p.Merged
		switch {
		case p.State != "open":
			m["mergeable"], m["mergeable_state"] = nil, "unknown"
		case p.MergeableState == "unknown":
			m["mergeable"], m["mergeable_state"] = nil, "unknown"
		default:
			m["mergeable"], m["mergeable_state"] = p.MergeableState != "dirty", p.MergeableState
		}
		m["merged_by"] = nil
		if p.Merged {
			m["merged_by"] = userJSON(tokenLogin)
		}
		m["comments"] = len(r.comments[p.Number])
		m["maintainer_can_modify"] = false
		m["commits"], m["additions"], m["deletions"], m["changed_files"] = 1, 1, 0, 1
	}
	return m
}

func (s *Server) listPulls(c *reqCtx) {
	r, ok := s.existingRepo(c)
	if !ok {
		return
	}
	q := c.r.URL.Query()
	state := orDefault(q.Get("state"), "open")
	if state != "open" && state != "closed" && state != "all" {
		s.validationFailed(c, map[string]string{"resource": "PullRequest", "field": "state", "code": "invalid"})
		return
	}
	head := q.Get("head")
	var headBranch string
	if head != "" {
		owner, branch, ok := strings.Cut(head, ":")
		if !ok {
			// GitHub silently ignores such a filter and lists every PR: a client bug.
			s.t.Errorf("githubtest: GET %s?head=%s: head must be OWNER:BRANCH", c.r.URL.Path, head)
		} else if !strings.EqualFold(owner, r.owner) {
			s.writeJSON(c, http.StatusOK, []any{})
			return
		}
		headBranch = branch
	}
	var sel []*pr
	for _, p := range r.prs {
		if (state == "all" || p.State == state) && (headBranch == "" || p.Head == headBranch) && (q.Get("base") == "" || q.Get("base") == p.Base) {
			sel = append(sel, p)
		}
	}
	sort.Slice(sel, func(i, j int) bool { return sel[i].Number > sel[j].Number }) // sort=created, direction=desc
	out := []any{}
	for _, p := range s.page(c, len(sel)) {
		out = append(out, s.prJSON(r, sel[p], false))
	}
	s.writeJSON(c, http.StatusOK, out)
}

// page applies per_page (default 30, max 100) and page, sets the Link
// header, and returns the indexes to render.
func (s *Server) page(c *reqCtx, total int) []int {
	q := c.r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = 30
	}
	if per > 100 {
		per = 100
	}
	pg, _ := strconv.Atoi(q.Get("page"))
	if pg <= 0 {
		pg = 1
	}
	last := (total + per - 1) / per
	if last == 0 {
		last = 1
	}
	link := func(n int, rel string) string {
		u := *c.r.URL
		u.Scheme, u.Host = "http", c.r.Host
		qq := u.Query()
		qq.Set("per_page", strconv.Itoa(per))
		qq.Set("page", strconv.Itoa(n))
		u.RawQuery = qq.Encode()
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if pg > 1 {
		links = append(links, link(pg-1, "prev"), link(1, "first"))
	}
	if pg < last {
		links = append(links, link(pg+1, "next"), link(last, "last"))
	}
	if len(links) > 0 {
		c.w.Header().Set("Link", strings.Join(links, ", "))
	}
	var idx []int
	for i := (pg - 1) * per; i < total && i < pg*per; i++ {
		idx = append(idx, i)
	}
	return idx
}

func tooLong(field, s string) map[string]string {
	if len([]rune(s)) > 65536 {
		return map[string]string{"resource": "Issue", "code": "custom", "field": field, "message": field + " is too long (maximum is 65536 characters)"}
	}
	return nil
}

func (s *Server) createPull(c *reqCtx) {
	r, ok := s.existingRepo(c)
	if !ok {
		return
	}
	var in struct {
		Title *string `json:"title"`
		Head  string  `json:"head"`
		Base  string  `json:"base"`
		Body  *string `json:"body"`
		Draft bool    `json:"draft"`
	}
	if !s.decode(c, &in) {
		return
	}
	head := in.Head
	if owner, branch, ok := strings.Cut(head, ":"); ok {
		if !strings.EqualFold(owner, r.owner) {
			s.validationFailed(c, map[string]string{"resource": "PullRequest", "field": "head", "code": "invalid"})
			return
		}
		head = branch
	}
	body := ""
	if in.Body != nil {
		body = *in.Body
	}
	switch {
	case in.Title == nil || strings.TrimSpace(*in.Title) == "":
		s.validationFailed(c, map[string]string{"resource": "PullRequest", "field": "title", "code": "missing_field"})
		return
	case r.branches[head] == "":
		s.validationFailed(c, map[string]string{"resource": "PullRequest", "field": "head", "code": "invalid"})
		return
	case r.branches[in.Base] == "":
		s.validationFailed(c, map[string]string{"resource": "PullRequest", "field": "base", "code": "invalid"})
		return
	case head == in.Base:
		s.validationFailed(c, map[string]string{"resource": "PullRequest", "code": "custom", "message": "No commits between " + in.Base + " and " + head})
		return
	case tooLong("body", body) != nil:
		s.validationFailed(c, tooLong("body", body))
		return
	}
	for _, p := range r.prs {
		if p.State == "open" && p.Head == head && p.Base == in.Base {
			s.validationFailed(c, map[string]string{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for " + r.owner + ":" + head + "."})
			return
		}
	}
	p := s.newPR(r, head, in.Base, *in.Title, body, c.user)
	c.w.Header().Set("Location", fmt.Sprintf("%s/repos/%s/%s/pulls/%d", s.URL, r.owner, r.name, p.Number))
	s.writeJSON(c, http.StatusCreated, s.prJSON(r, p, true))
}

func (s *Server) pull(c *reqCtx) (*repo, *pr, bool) {
	r, ok := s.existingRepo(c)
	if !ok {
		return nil, nil, false
	}
	n, ok := s.number(c, 4)
	if !ok {
		return nil, nil, false
	}
	p, ok := r.prs[n]
	if !ok {
		s.fail(c, http.StatusNotFound, "Not Found")
		return nil, nil, false
	}
	return r, p, true
}

func (s *Server) getPull(c *reqCtx) {
	if r, p, ok := s.pull(c); ok {
		s.writeJSON(c, http.StatusOK, s.prJSON(r, p, true))
	}
}

func (s *Server) updatePull(c *reqCtx) {
	r, p, ok := s.pull(c)
	if !ok {
		return
	}
	var in struct {
		Title *string `json:"title"`
		Body  *string `json:"body"`
		State *string `json:"state"`
		Base  *string `json:"base"`
	}
	if !s.decode(c, &in) {
		return
	}
	if in.Title != nil && strings.TrimSpace(*in.Title) == "" {
		s.validationFailed(c, map[string]string{"resource": "PullRequest", "field": "title", "code": "missing_field"})
		return
	}
	if in.Body != nil && tooLong("body", *in.Body) != nil {
		s.validationFailed(c, tooLong("body", *in.Body))
		return
	}
	if in.State != nil && *in.State != "open" && *in.State != "closed" {
		s.validationFailed(c, map[string]string{"resource": "PullRequest", "field": "state", "code": "invalid"})
		return
	}
	if in.State != nil && *in.State == "open" && p.Merged {
		s.validationFailed(c, map[string]string{"resource": "PullRequest", "code": "custom", "message": "state cannot be changed. The pull request cannot be reopened because it has been merged."})
		return
	}
	if in.Base != nil {
		if p.State != "open" {
			s.validationFailed(c, map[string]string{"resource": "PullRequest", "code": "custom", "field": "base", "message": "Cannot change the base branch of a closed pull request."})
			return
		}
		if r.branches[*in.Base] == "" {
			s.validationFailed(c, map[string]string{"resource": "PullRequest", "field": "base", "code": "invalid"})
			return
		}
		p.Base = *in.Base
	}
	if in.Title != nil {
		p.Title = *in.Title
	}
	if in.Body != nil {
		p.Body = *in.Body
	}
	now := s.now()
	if in.State != nil && *in.State != p.State {
		p.State = *in.State
		if p.State == "closed" {
			p.closedAt = now
			p.AutoMerge = false
		} else {
			p.closedAt = time.Time{}
		}
	}
	p.updated = now
	s.writeJSON(c, http.StatusOK, s.prJSON(r, p, true))
}

func (s *Server) mergePull(c *reqCtx) {
	r, p, ok := s.pull(c)
	if !ok {
		return
	}
	var in struct {
		CommitTitle   string `json:"commit_title"`
		CommitMessage string `json:"commit_message"`
		SHA           string `json:"sha"`
		MergeMethod   string `json:"merge_method"`
	}
	if len(bytes.TrimSpace(c.body)) > 0 && !s.decode(c, &in) {
		return
	}
	method := orDefault(in.MergeMethod, "merge")
	switch {
	case method != "merge" && method != "squash" && method != "rebase":
		s.validationFailed(c, map[string]string{"resource": "PullRequest", "field": "merge_method", "code": "invalid"})
	case p.State != "open":
		s.fail(c, http.StatusMethodNotAllowed, "Pull Request is not mergeable")
	case in.SHA != "" && in.SHA != p.HeadSHA:
		s.fail(c, http.StatusConflict, "Head branch was modified. Review and try the merge again.")
	case p.MergeableState != "clean" && p.MergeableState != "unstable" && p.MergeableState != "has_hooks":
		s.fail(c, http.StatusMethodNotAllowed, "Pull Request is not mergeable")
	default:
		s.merge(r, p, method)
		s.writeJSON(c, http.StatusOK, map[string]any{"sha": p.mergeCommitSHA, "merged": true, "message": "Pull Request successfully merged"})
	}
}

func (s *Server) issuePR(c *reqCtx) (*repo, *pr, bool) {
	r, ok := s.existingRepo(c)
	if !ok {
		return nil, nil, false
	}
	n, ok := s.number(c, 4)
	if !ok {
		return nil, nil, false
	}
	p, ok := r.prs[n] // only PRs exist as issues here
	if !ok {
		s.fail(c, http.StatusNotFound, "Not Found")
		return nil, nil, false
	}
	return r, p, true
}

func (s *Server) addLabels(c *reqCtx) {
	r, p, ok := s.issuePR(c)
	if !ok {
		return
	}
	// Documented bodies: {"labels": ["a"]}, ["a"], {"labels": [{"name": "a"}]}.
	var names []string
	var obj struct {
		Labels json.RawMessage `json:"labels"`
	}
	raw := c.body
	if json.Unmarshal(c.body, &obj) == nil && obj.Labels != nil {
		raw = obj.Labels
	}
	if json.Unmarshal(raw, &names) != nil {
		var objs []struct {
			Name string `json:"name"`
		}
		if !s.decode(c, &objs) {
			return
		}
		for _, o := range objs {
			names = append(names, o.Name)
		}
	}
	if len(names) == 0 {
		s.validationFailed(c, map[string]string{"resource": "Label", "field": "labels", "code": "missing_field"})
		return
	}
	for _, n := range names {
		if strings.TrimSpace(n) == "" || len(n) > 50 {
			s.validationFailed(c, map[string]string{"resource": "Label", "field": "name", "code": "invalid"})
			return
		}
	}
	for _, n := range names {
		key := strings.ToLower(n)
		if canonical, ok := r.labels[key]; ok {
			n = canonical
		} else {
			r.labels[key] = n // labels are created on first use
		}
		dup := false
		for _, have := range p.Labels {
			dup = dup || strings.EqualFold(have, n)
		}
		if !dup {
			p.Labels = append(p.Labels, n)
		}
	}
	s.writeJSON(c, http.StatusOK, s.labelsJSON(r, p.Labels))
}

func (s *Server) commentJSON(r *repo, n int, cm *comment) map[string]any {
	return map[string]any{
		"id": cm.ID, "node_id": fmt.Sprintf("IC_kwfake%d", cm.ID),
		"url":                fmt.Sprintf("%s/repos/%s/%s/issues/comments/%d", s.URL, r.owner, r.name, cm.ID),
		"html_url":           fmt.Sprintf("%s/%s/%s/pull/%d#issuecomment-%d", HTMLBase, r.owner, r.name, n, cm.ID),
		"issue_url":          fmt.Sprintf("%s/repos/%s/%s/issues/%d", s.URL, r.owner, r.name, n),
		"body":               cm.Body,
		"user":               userJSON(cm.User),
		"created_at":         ts(cm.createdAt),
		"updated_at":         ts(cm.updatedAt),
		"author_association": "NONE",
	}
}

func (s *Server) listComments(c *reqCtx) {
	r, p, ok := s.issuePR(c)
	if !ok {
		return
	}
	all := r.comments[p.Number]
	out := []any{}
	for _, i := range s.page(c, len(all)) {
		out = append(out, s.commentJSON(r, p.Number, all[i]))
	}
	s.writeJSON(c, http.StatusOK, out)
}

func (s *Server) createComment(c *reqCtx) {
	r, p, ok := s.issuePR(c)
	if !ok {
		return
	}
	var in struct {
		Body *string `json:"body"`
	}
	if !s.decode(c, &in) {
		return
	}
	if in.Body == nil || *in.Body == "" {
		s.validationFailed(c, map[string]string{"resource": "IssueComment", "field": "body", "code": "missing_field"})
		return
	}
	if e := tooLong("body", *in.Body); e != nil {
		s.validationFailed(c, e)
		return
	}
	cm := s.addComment(r, p.Number, c.user, *in.Body)
	c.w.Header().Set("Location", fmt.Sprintf("%s/repos/%s/%s/issues/comments/%d", s.URL, r.owner, r.name, cm.ID))
	s.writeJSON(c, http.StatusCreated, s.commentJSON(r, p.Number, cm))
}

func (s *Server) updateComment(c *reqCtx) {
	r, ok := s.existingRepo(c)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(c.parts[5], 10, 64)
	if err != nil {
		s.fail(c, http.StatusNotFound, "Not Found")
		return
	}
	var in struct {
		Body *string `json:"body"`
	}
	if !s.decode(c, &in) {
		return
	}
	for n, list := range r.comments {
		for _, cm := range list {
			if cm.ID != id {
				continue
			}
			if in.Body == nil || *in.Body == "" {
				s.validationFailed(c, map[string]string{"resource": "IssueComment", "field": "body", "code": "missing_field"})
				return
			}
			if e := tooLong("body", *in.Body); e != nil {
				s.validationFailed(c, e)
				return
			}
			cm.Body, cm.updatedAt = *in.Body, s.now()
			s.writeJSON(c, http.StatusOK, s.commentJSON(r, n, cm))
			return
		}
	}
	s.fail(c, http.StatusNotFound, "Not Found")
}

// listStatuses is GET /repos/{o}/{r}/commits/{ref}/statuses: newest first
// (one page is enough for the fake's callers).
func (s *Server) listStatuses(c *reqCtx) {
	r, ok := s.existingRepo(c)
	if !ok {
		return
	}
	ref := c.parts[4]
	if sha, ok := r.branches[ref]; ok {
		ref = sha
	}
	sts := r.statuses[ref]
	out := make([]map[string]any, 0, len(sts))
	for i := len(sts) - 1; i >= 0; i-- {
		st := sts[i]
		out = append(out, map[string]any{
			"id": st.ID, "state": st.State, "context": st.Context, "description": st.Description,
			"target_url": st.TargetURL, "created_at": st.createdAt.UTC().Format(time.RFC3339),
			"updated_at": st.createdAt.UTC().Format(time.RFC3339), "url": s.URL + "/repos/" + r.owner + "/" + r.name + "/statuses/" + ref,
		})
	}
	s.writeJSON(c, http.StatusOK, out)
}

func (s *Server) createStatus(c *reqCtx) {
	r, ok := s.existingRepo(c)
	if !ok {
		return
	}
	sha := c.parts[4]
	var in struct {
		State       string  `json:"state"`
		TargetURL   *string `json:"target_url"`
		Description *string `json:"description"`
		Context     *string `json:"context"`
	}
	if !s.decode(c, &in) {
		return
	}
	switch in.State {
	case "pending", "success", "failure", "error":
	default:
		s.validationFailed(c, map[string]string{"resource": "Status", "field": "state", "code": "custom", "message": "state is not included in the list"})
		return
	}
	if in.Description != nil && len([]rune(*in.Description)) > 140 {
		s.validationFailed(c, map[string]string{"resource": "Status", "field": "description", "code": "custom", "message": "description is too long (maximum is 140 characters)"})
		return
	}
	if !r.commits[sha] {
		s.fail(c, http.StatusUnprocessableEntity, "No commit found for SHA: "+sha)
		return
	}
	st := &status{Status: Status{ID: s.id(), State: in.State, Context: "default", Creator: c.user}, createdAt: s.now()}
	if in.Context != nil && *in.Context != "" {
		st.Context = *in.Context
	}
	if in.Description != nil {
		st.Description = *in.Description
	}
	if in.TargetURL != nil {
		st.TargetURL = *in.TargetURL
	}
	r.statuses[sha] = append(r.statuses[sha], st)
	s.writeJSON(c, http.StatusCreated, map[string]any{
		"url": fmt.Sprintf("%s/repos/%s/%s/statuses/%s", s.URL, r.owner, r.name, sha), "id": st.ID,
		"node_id": fmt.Sprintf("SC_kwfake%d", st.ID), "state": st.State, "description": nullable(st.Description),
		"target_url": nullable(st.TargetURL), "context": st.Context, "created_at": ts(st.createdAt),
		"updated_at": ts(st.createdAt), "creator": userJSON(c.user), "avatar_url": nil,
	})
}

func (s *Server) deleteRef(c *reqCtx) {
	r, ok := s.existingRepo(c)
	if !ok {
		return
	}
	branch := strings.Join(c.parts[6:], "/")
	if _, ok := r.branches[branch]; !ok {
		s.fail(c, http.StatusUnprocessableEntity, "Reference does not exist")
		return
	}
	delete(r.branches, branch)
	now := s.now()
	for _, p := range r.prs { // GitHub closes the PRs whose head branch is deleted
		if p.State == "open" && p.Head == branch {
			p.State, p.closedAt, p.updated, p.AutoMerge = "closed", now, now, false
		}
	}
	s.noContent(c)
}

func (s *Server) createInstallationToken(c *reqCtx) {
	id, err := strconv.ParseInt(c.parts[2], 10, 64)
	if err != nil || s.installations[id] != c.appID {
		s.fail(c, http.StatusNotFound, "Not Found")
		return
	}
	if len(bytes.TrimSpace(c.body)) > 0 {
		var in map[string]any
		if !s.decode(c, &in) {
			return
		}
	}
	tok := "ghs_" + randomHex(18)
	exp := s.now().Add(time.Hour).Truncate(time.Second)
	s.tokens[tok] = exp
	s.tokensIssued++
	s.writeJSON(c, http.StatusCreated, map[string]any{
		"token": tok, "expires_at": exp.UTC().Format(time.RFC3339),
		"permissions":          map[string]string{"contents": "write", "pull_requests": "write", "issues": "write", "statuses": "write", "metadata": "read"},
		"repository_selection": "all",
	})
}

func (s *Server) repoInstallation(c *reqCtx) {
	r, ok := s.existingRepo(c)
	if !ok {
		return
	}
	for id, app := range s.installations {
		if app == c.appID {
			s.writeJSON(c, http.StatusOK, map[string]any{
				"id": id, "app_id": app, "app_slug": "offshoot", "target_type": "Organization",
				"account":              map[string]any{"login": r.owner, "type": "Organization"},
				"access_tokens_url":    fmt.Sprintf("%s/app/installations/%d/access_tokens", s.URL, id),
				"repositories_url":     s.URL + "/installation/repositories",
				"html_url":             fmt.Sprintf("%s/organizations/%s/settings/installations/%d", HTMLBase, r.owner, id),
				"permissions":          map[string]string{"contents": "write", "pull_requests": "write"},
				"events":               []string{},
				"repository_selection": "all",
				"created_at":           ts(s.now()), "updated_at": ts(s.now()),
			})
			return
		}
	}
	s.fail(c, http.StatusNotFound, "Not Found")
}

// graphql implements the mutation enablePullRequestAutoMerge, with the
// pull request id and merge method passed as variables.
func (s *Server) graphql(c *reqCtx) {
	var in struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if !s.decode(c, &in) {
		return
	}
	if !strings.Contains(in.Query, "enablePullRequestAutoMerge") || !strings.HasPrefix(strings.TrimSpace(in.Query), "mutation") {
		s.t.Errorf("githubtest: unexpected GraphQL query: %s", in.Query)
		s.writeJSON(c, http.StatusOK, map[string]any{"errors": []any{map[string]any{"message": "unsupported by githubtest"}}})
		return
	}
	id, _ := in.Variables["pullRequestId"].(string)
	method, _ := in.Variables["mergeMethod"].(string)
	if id == "" {
		s.t.Errorf("githubtest: enablePullRequestAutoMerge without a pullRequestId variable: %s", c.body)
	}
	method = orDefault(method, "MERGE")
	gqlErr := func(typ, msg string) {
		s.writeJSON(c, http.StatusOK, map[string]any{
			"data":   map[string]any{"enablePullRequestAutoMerge": nil},
			"errors": []any{map[string]any{"type": typ, "path": []string{"enablePullRequestAutoMerge"}, "locations": []any{map[string]int{"line": 2, "column": 3}}, "message": msg}},
		})
	}
	if method != "MERGE" && method != "SQUASH" && method != "REBASE" {
		gqlErr("INVALID", "Variable $mergeMethod of type PullRequestMergeMethod! was provided invalid value")
		return
	}
	for _, r := range s.repos {
		for _, p := range r.prs {
			if p.NodeID != id {
				continue
			}
			switch {
			case !r.settings.AllowAutoMerge:
				gqlErr("UNPROCESSABLE", "Pull request Auto merge is not allowed for this repository")
			case p.State != "open":
				gqlErr("UNPROCESSABLE", "Pull request Pull request is closed")
			case p.MergeableState == "clean":
				gqlErr("UNPROCESSABLE", "Pull request Pull request is in clean status")
			default:
				now := s.now()
				p.AutoMerge, p.AutoMergeMethod, p.autoMergeEnabledBy, p.updated = true, method, c.user, now
				s.writeJSON(c, http.StatusOK, map[string]any{"data": map[string]any{"enablePullRequestAutoMerge": map[string]any{
					"pullRequest": map[string]any{"number": p.Number, "autoMergeRequest": map[string]any{"enabledAt": ts(now), "mergeMethod": method}},
				}}})
			}
			return
		}
	}
	gqlErr("NOT_FOUND", fmt.Sprintf("Could not resolve to a node with the global id of '%s'", id))
}
