package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testSecret = "s3cr3t-0ffsh00t-webhook-key"
	repoName   = "acme/shop"
	forkName   = "mallory/shop"
	sha1       = "9f2c1e7b5a4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b"
	sha2       = "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e"
	zeroSHA    = "0000000000000000000000000000000000000000"
)

var fixedNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// ---------------------------------------------------------------------------
// Payloads in GitHub's documented shapes.

func user(login string, id int) map[string]any {
	return map[string]any{
		"login": login, "id": id, "node_id": "MDQ6VXNlcj" + strconv.Itoa(id),
		"avatar_url": "https://avatars.githubusercontent.com/u/" + strconv.Itoa(id) + "?v=4",
		"html_url":   "https://github.com/" + login, "type": "User", "site_admin": false,
	}
}

func repository(fullName string, id int) map[string]any {
	owner, name, _ := strings.Cut(fullName, "/")
	return map[string]any{
		"id": id, "node_id": "R_kgDO" + strconv.Itoa(id), "name": name, "full_name": fullName,
		"private": false, "owner": user(owner, id+1), "html_url": "https://github.com/" + fullName,
		"fork": fullName != repoName, "url": "https://api.github.com/repos/" + fullName,
		"default_branch": "main", "visibility": "public",
	}
}

func sender() map[string]any { return user("octocat", 583231) }

func pushPayload(ref, before, after string, created, deleted bool) map[string]any {
	p := map[string]any{
		"ref": ref, "before": before, "after": after,
		"created": created, "deleted": deleted, "forced": false, "base_ref": nil,
		"compare":     "https://github.com/" + repoName + "/compare/" + before[:12] + "..." + after[:12],
		"commits":     []any{},
		"head_commit": nil,
		"repository":  repository(repoName, 1296269),
		"pusher":      map[string]any{"name": "octocat", "email": "octocat@github.com"},
		"sender":      sender(),
	}
	if !deleted {
		commit := map[string]any{
			"id": after, "tree_id": sha2, "distinct": true, "message": "Fix checkout rounding",
			"timestamp": "2026-03-14T15:09:20Z", "url": "https://github.com/" + repoName + "/commit/" + after,
			"author":    map[string]any{"name": "Octo Cat", "email": "octocat@github.com", "username": "octocat"},
			"committer": map[string]any{"name": "Octo Cat", "email": "octocat@github.com", "username": "octocat"},
			"added":     []string{}, "removed": []string{}, "modified": []string{"cart/total.go"},
		}
		p["commits"] = []any{commit}
		p["head_commit"] = commit
	}
	return p
}

func refPayload(ref, refType string) map[string]any {
	return map[string]any{
		"ref": ref, "ref_type": refType, "master_branch": "main", "description": "the shop",
		"pusher_type": "user", "repository": repository(repoName, 1296269), "sender": sender(),
	}
}

func prPayload(action string, number int, headRef, headSHA, headRepo, baseRef string, labels ...string) map[string]any {
	var ls []any
	for i, l := range labels {
		ls = append(ls, map[string]any{"id": 208045946 + i, "name": l, "color": "f29513", "default": false})
	}
	side := func(ref, sha, repo string) map[string]any {
		owner, _, _ := strings.Cut(repo, "/")
		return map[string]any{
			"label": owner + ":" + ref, "ref": ref, "sha": sha,
			"user": user(owner, 100), "repo": repository(repo, 1296269+len(repo)),
		}
	}
	p := map[string]any{
		"action": action, "number": number,
		"pull_request": map[string]any{
			"url": fmt.Sprintf("https://api.github.com/repos/%s/pulls/%d", repoName, number),
			"id":  1000000 + number, "number": number, "state": "open", "locked": false,
			"title": "Round totals per line", "user": sender(), "body": "Fixes #12",
			"labels": ls, "draft": false, "merged": false,
			"head":     side(headRef, headSHA, headRepo),
			"base":     side(baseRef, sha2, repoName),
			"html_url": fmt.Sprintf("https://github.com/%s/pull/%d", repoName, number),
		},
		"repository": repository(repoName, 1296269),
		"sender":     sender(),
	}
	if action == "closed" {
		p["pull_request"].(map[string]any)["state"] = "closed"
	}
	if action == "labeled" && len(labels) > 0 {
		p["label"] = ls[len(ls)-1]
	}
	return p
}

func pingPayload() map[string]any {
	return map[string]any{
		"zen": "Keep it logically awesome.", "hook_id": 30,
		"hook": map[string]any{"type": "Repository", "id": 30, "active": true,
			"events": []string{"push", "create", "delete", "pull_request"},
			"config": map[string]any{"content_type": "json", "insecure_ssl": "0", "url": "https://offshoot.example/hooks/github"}},
		"repository": repository(repoName, 1296269), "sender": sender(),
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ---------------------------------------------------------------------------
// Test doubles.

type fakeSink struct {
	mu      sync.Mutex
	events  []Event
	calls   atomic.Int32
	busy    atomic.Int32 // the next n offers return ErrBusy
	err     error        // returned (after busy) when set
	delay   time.Duration
	gate    chan struct{} // if set, every Offer waits on it
	entered chan struct{}
}

func (s *fakeSink) Offer(ev Event) error {
	s.calls.Add(1)
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.gate != nil {
		<-s.gate
	}
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	if s.busy.Add(-1) >= 0 {
		return ErrBusy
	}
	if s.err != nil {
		return s.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
	return nil
}

func (s *fakeSink) got() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

type observation struct{ event, outcome string }

type observer struct {
	mu  sync.Mutex
	obs []observation
}

func (o *observer) observe(event, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.obs = append(o.obs, observation{event, outcome})
}

func (o *observer) all() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observation(nil), o.obs...)
}

func newHandler(sink *fakeSink) *Handler {
	return &Handler{Secret: []byte(testSecret), Sink: sink, Now: func() time.Time { return fixedNow }}
}

type req struct {
	method      string
	event       string
	delivery    string
	body        []byte
	contentType string
	signature   *string // nil = sign body with testSecret
	noEvent     bool
	noDelivery  bool
	ctx         context.Context
}

func do(t testing.TB, h http.Handler, r req) *httptest.ResponseRecorder {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.contentType == "" {
		r.contentType = "application/json"
	}
	if r.delivery == "" {
		r.delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	}
	hr := httptest.NewRequest(r.method, "/hooks/github", bytes.NewReader(r.body))
	if r.ctx != nil {
		hr = hr.WithContext(r.ctx)
	}
	hr.Header.Set("Content-Type", r.contentType)
	hr.Header.Set("User-Agent", "GitHub-Hookshot/044aadd")
	if !r.noEvent {
		hr.Header.Set("X-GitHub-Event", r.event)
	}
	if !r.noDelivery {
		hr.Header.Set("X-GitHub-Delivery", r.delivery)
	}
	hr.Header.Set("X-GitHub-Hook-ID", "292430182")
	if r.signature == nil {
		hr.Header.Set("X-Hub-Signature-256", sign(testSecret, r.body))
	} else if *r.signature != "" {
		hr.Header.Set("X-Hub-Signature-256", *r.signature)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr)
	return rec
}

func ptr(s string) *string { return &s }

func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("response body %q is not JSON: %v", rec.Body.String(), err)
	}
	return m
}

// ---------------------------------------------------------------------------

// The example from GitHub's "Validating webhook deliveries" page.
func TestSignatureKnownAnswer(t *testing.T) {
	secret := []byte("It's a Secret to Everybody")
	body := []byte("Hello, World!")
	sig := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if !validSignature(secret, body, []string{sig}) {
		t.Fatal("GitHub's documented example signature was rejected")
	}
	if validSignature(secret, []byte("Hello, World?"), []string{sig}) {
		t.Fatal("signature accepted for another body")
	}
}

func TestMapping(t *testing.T) {
	withRef := func(p map[string]any, k string, v any) map[string]any { p[k] = v; return p }
	prWith := func(p map[string]any, f func(pr map[string]any)) map[string]any {
		f(p["pull_request"].(map[string]any))
		return p
	}
	tests := []struct {
		name       string
		event      string
		payload    any // map or raw []byte
		status     int
		outcome    string
		want       *Event // nil: nothing queued
		wantReason string
	}{
		// push
		{"push sync", "push", pushPayload("refs/heads/feature/cart", sha2, sha1, false, false),
			202, OutcomeQueued, &Event{Source: "push", Kind: KindSync, Branch: "feature/cart", SHA: sha1}, ""},
		{"push created branch is a sync", "push", pushPayload("refs/heads/feature/new", zeroSHA, sha1, true, false),
			202, OutcomeQueued, &Event{Source: "push", Kind: KindSync, Branch: "feature/new", SHA: sha1}, ""},
		{"push deleted branch", "push", pushPayload("refs/heads/feature/cart", sha1, zeroSHA, false, true),
			202, OutcomeQueued, &Event{Source: "push", Kind: KindDelete, Branch: "feature/cart"}, ""},
		{"push unicode branch", "push", pushPayload("refs/heads/fix/größe", sha2, sha1, false, false),
			202, OutcomeQueued, &Event{Source: "push", Kind: KindSync, Branch: "fix/größe", SHA: sha1}, ""},
		{"push tag ignored", "push", pushPayload("refs/tags/v1.2.0", zeroSHA, sha1, true, false),
			202, OutcomeIgnored, nil, "tag"},
		{"push tag deletion ignored", "push", pushPayload("refs/tags/v1.2.0", sha1, zeroSHA, false, true),
			202, OutcomeIgnored, nil, "tag"},
		{"push other ref ignored", "push", pushPayload("refs/notes/commits", sha2, sha1, false, false),
			202, OutcomeIgnored, nil, "not a branch"},
		{"push zero after without deleted", "push", pushPayload("refs/heads/main", sha1, zeroSHA, false, false),
			400, OutcomeBadRequest, nil, ""},
		{"push garbage after", "push", withRef(pushPayload("refs/heads/main", sha2, sha1, false, false), "after", "HEAD"),
			400, OutcomeBadRequest, nil, ""},
		{"push no ref", "push", withRef(pushPayload("refs/heads/main", sha2, sha1, false, false), "ref", ""),
			400, OutcomeBadRequest, nil, ""},
		{"push empty branch", "push", pushPayload("refs/heads/", sha2, sha1, false, false),
			400, OutcomeBadRequest, nil, ""},
		{"push control character", "push", pushPayload("refs/heads/evil\nbranch", sha2, sha1, false, false),
			400, OutcomeBadRequest, nil, ""},
		{"push ref of wrong type", "push", withRef(pushPayload("refs/heads/main", sha2, sha1, false, false), "ref", 42),
			400, OutcomeBadRequest, nil, ""},
		{"push malformed JSON", "push", []byte(`{"ref":"refs/heads/main","after":`),
			400, OutcomeBadRequest, nil, ""},

		// create / delete
		{"create branch", "create", refPayload("feature/cart", "branch"),
			202, OutcomeQueued, &Event{Source: "create", Kind: KindSync, Branch: "feature/cart"}, ""},
		{"create tag ignored", "create", refPayload("v1.2.0", "tag"), 202, OutcomeIgnored, nil, "tag"},
		{"create no ref_type", "create", refPayload("feature/cart", ""), 400, OutcomeBadRequest, nil, ""},
		{"create empty branch", "create", refPayload("", "branch"), 400, OutcomeBadRequest, nil, ""},
		{"create control character", "create", refPayload("a\x1bb", "branch"), 400, OutcomeBadRequest, nil, ""},
		{"create malformed JSON", "create", []byte(`["ref","branch"]`), 400, OutcomeBadRequest, nil, ""},
		{"delete branch", "delete", refPayload("feature/cart", "branch"),
			202, OutcomeQueued, &Event{Source: "delete", Kind: KindDelete, Branch: "feature/cart"}, ""},
		{"delete tag ignored", "delete", refPayload("v1.2.0", "tag"), 202, OutcomeIgnored, nil, "tag"},
		{"delete malformed JSON", "delete", []byte(`not json`), 400, OutcomeBadRequest, nil, ""},

		// pull_request
		{"pr opened", "pull_request", prPayload("opened", 42, "feature/cart", sha1, repoName, "staging", "preview", "backend"),
			202, OutcomeQueued, &Event{Source: "pull_request", Kind: KindSync, Branch: "feature/cart", SHA: sha1,
				Parent: "staging", PR: 42, Labels: []string{"preview", "backend"}}, ""},
		{"pr reopened", "pull_request", prPayload("reopened", 42, "feature/cart", sha1, repoName, "main"),
			202, OutcomeQueued, &Event{Source: "pull_request", Kind: KindSync, Branch: "feature/cart", SHA: sha1, Parent: "main", PR: 42}, ""},
		{"pr synchronize", "pull_request", prPayload("synchronize", 7, "fix/rounding", sha2, repoName, "main"),
			202, OutcomeQueued, &Event{Source: "pull_request", Kind: KindSync, Branch: "fix/rounding", SHA: sha2, Parent: "main", PR: 7}, ""},
		{"pr labeled", "pull_request", prPayload("labeled", 7, "fix/rounding", sha2, repoName, "main", "preview"),
			202, OutcomeQueued, &Event{Source: "pull_request", Kind: KindSync, Branch: "fix/rounding", SHA: sha2, Parent: "main", PR: 7, Labels: []string{"preview"}}, ""},
		{"pr closed unmerged", "pull_request", prPayload("closed", 7, "fix/rounding", sha2, repoName, "main"),
			202, OutcomeQueued, &Event{Source: "pull_request", Kind: KindDelete, Branch: "fix/rounding", SHA: sha2, Parent: "main", PR: 7}, ""},
		{"pr closed merged", "pull_request", prWith(prPayload("closed", 8, "feature/cart", sha1, repoName, "main"),
			func(pr map[string]any) { pr["merged"] = true; pr["merge_commit_sha"] = sha2 }),
			202, OutcomeQueued, &Event{Source: "pull_request", Kind: KindDelete, Branch: "feature/cart", SHA: sha1, Parent: "main", PR: 8}, ""},
		{"pr edited ignored", "pull_request", prPayload("edited", 7, "fix/rounding", sha2, repoName, "main"),
			202, OutcomeIgnored, nil, "action edited"},
		{"pr assigned ignored", "pull_request", prPayload("assigned", 7, "fix/rounding", sha2, repoName, "main"),
			202, OutcomeIgnored, nil, "action assigned"},
		{"pr from fork ignored", "pull_request", prPayload("opened", 9, "main", sha1, forkName, "main"),
			202, OutcomeIgnored, nil, "fork"},
		{"pr from fork closed ignored", "pull_request", prPayload("closed", 9, "main", sha1, forkName, "main"),
			202, OutcomeIgnored, nil, "fork"},
		{"pr from fork with hostile ref ignored", "pull_request", prPayload("opened", 9, "x\x00y", sha1, forkName, "main"),
			202, OutcomeIgnored, nil, "fork"},
		{"pr from deleted fork ignored", "pull_request", prWith(prPayload("synchronize", 9, "main", sha1, forkName, "main"),
			func(pr map[string]any) { pr["head"].(map[string]any)["repo"] = nil }),
			202, OutcomeIgnored, nil, "fork"},
		{"pr without pull_request", "pull_request", map[string]any{"action": "opened", "number": 3, "sender": sender()},
			400, OutcomeBadRequest, nil, ""},
		{"pr without head sha", "pull_request", prPayload("opened", 3, "feature/cart", "", repoName, "main"),
			400, OutcomeBadRequest, nil, ""},
		{"pr with empty head ref", "pull_request", prPayload("opened", 3, "", sha1, repoName, "main"),
			400, OutcomeBadRequest, nil, ""},
		{"pr malformed JSON", "pull_request", []byte(`{"action":"opened","pull_request":{"head":{"ref":1}}}`),
			400, OutcomeBadRequest, nil, ""},

		// others
		{"issues ignored", "issues", map[string]any{"action": "opened", "issue": map[string]any{"number": 1}},
			202, OutcomeIgnored, nil, "unsupported event issues"},
		{"star ignored", "star", map[string]any{"action": "created", "starred_at": "2026-03-14T15:09:26Z"},
			202, OutcomeIgnored, nil, "unsupported event star"},
		{"unsupported event not parsed", "workflow_run", []byte(`{{{`), 202, OutcomeIgnored, nil, "unsupported event workflow_run"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &fakeSink{}
			obs := &observer{}
			h := newHandler(sink)
			h.Observe = obs.observe
			body, ok := tc.payload.([]byte)
			if !ok {
				body = mustJSON(t, tc.payload)
			}
			delivery := fmt.Sprintf("d-%04d", i)
			rec := do(t, h, req{event: tc.event, delivery: delivery, body: body})
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if o := obs.all(); len(o) != 1 || o[0] != (observation{tc.event, tc.outcome}) {
				t.Fatalf("observed %v, want [{%s %s}]", o, tc.event, tc.outcome)
			}
			resp := decodeBody(t, rec)
			got := sink.got()
			if tc.want == nil {
				if len(got) != 0 || sink.calls.Load() != 0 {
					t.Fatalf("queued %+v, want nothing", got)
				}
				if tc.wantReason != "" && resp["reason"] != tc.wantReason {
					t.Fatalf("reason %v, want %q", resp["reason"], tc.wantReason)
				}
				return
			}
			want := *tc.want
			want.Delivery, want.Received = delivery, fixedNow
			if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Fatalf("queued %+v\nwant      %+v", got, want)
			}
			if resp["queued"] != true || resp["branch"] != want.Branch || resp["kind"] != string(want.Kind) {
				t.Fatalf("response %v", resp)
			}
		})
	}
}

func TestPing(t *testing.T) {
	sink := &fakeSink{}
	rec := do(t, newHandler(sink), req{event: "ping", body: mustJSON(t, pingPayload())})
	if rec.Code != 200 || decodeBody(t, rec)["pong"] != true {
		t.Fatalf("ping: %d %s", rec.Code, rec.Body)
	}
	if sink.calls.Load() != 0 {
		t.Fatal("ping reached the sink")
	}
}

func TestUnauthorized(t *testing.T) {
	body := mustJSON(t, pushPayload("refs/heads/main", sha2, sha1, false, false))
	other := mustJSON(t, pushPayload("refs/heads/prod", sha2, sha1, false, false))
	valid := sign(testSecret, body)
	cases := []struct {
		name   string
		secret string // handler secret; "" keeps testSecret
		r      req
	}{
		{"missing signature", "", req{signature: ptr("")}},
		{"no algorithm prefix", "", req{signature: ptr(strings.TrimPrefix(valid, "sha256="))}},
		{"sha1 prefix", "", req{signature: ptr("sha1=" + strings.TrimPrefix(valid, "sha256="))}},
		{"not hex", "", req{signature: ptr("sha256=" + strings.Repeat("zz", 32))}},
		{"truncated", "", req{signature: ptr(valid[:len(valid)-2])}},
		{"too long", "", req{signature: ptr(valid + "00")}},
		{"signature for another body", "", req{signature: ptr(sign(testSecret, other))}},
		{"wrong secret", "", req{signature: ptr(sign("not-the-secret", body))}},
		{"handler without secret", "-", req{}},
		{"bad signature beats missing headers", "", req{signature: ptr(sign("x", body)), noEvent: true, noDelivery: true}},
		{"bad signature beats malformed JSON", "", req{signature: ptr(sign("x", []byte("{"))), body: []byte("{")}},
	}
	var first string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink := &fakeSink{}
			obs := &observer{}
			h := newHandler(sink)
			h.Observe = obs.observe
			if tc.secret == "-" {
				h.Secret = nil
			}
			r := tc.r
			r.event = "push"
			if r.body == nil {
				r.body = body
			}
			rec := do(t, h, r)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401; body %s", rec.Code, rec.Body)
			}
			if sink.calls.Load() != 0 {
				t.Fatal("unauthenticated delivery reached the sink")
			}
			if first == "" {
				first = rec.Body.String()
			}
			if rec.Body.String() != first || !strings.Contains(first, "invalid signature") {
				t.Fatalf("401 body %q differs from %q: it must not say what was wrong", rec.Body, first)
			}
			if o := obs.all(); len(o) != 1 || o[0].outcome != OutcomeUnauthorized {
				t.Fatalf("observed %v", o)
			}
		})
	}

	// Hex case of the signature does not matter (it is decoded, not compared as text).
	sink := &fakeSink{}
	rec := do(t, newHandler(sink), req{event: "push", body: body, signature: ptr("sha256=" + strings.ToUpper(valid[7:]))})
	if rec.Code != http.StatusAccepted {
		t.Fatalf("upper-case hex signature: %d", rec.Code)
	}
}

func TestContentType(t *testing.T) {
	body := mustJSON(t, pushPayload("refs/heads/main", sha2, sha1, false, false))
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "application/jsonx", "json", "application/json; charset"} {
		sink := &fakeSink{}
		rec := do(t, newHandler(sink), req{event: "push", body: body, contentType: ct})
		if rec.Code != http.StatusUnsupportedMediaType || sink.calls.Load() != 0 {
			t.Errorf("Content-Type %q: status %d, offers %d; want 415 and nothing queued", ct, rec.Code, sink.calls.Load())
		}
	}
	// Missing Content-Type.
	sink := &fakeSink{}
	hr := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	hr.Header.Set("X-GitHub-Event", "push")
	hr.Header.Set("X-GitHub-Delivery", "d-1")
	hr.Header.Set("X-Hub-Signature-256", sign(testSecret, body))
	rec := httptest.NewRecorder()
	newHandler(sink).ServeHTTP(rec, hr)
	if rec.Code != http.StatusUnsupportedMediaType || sink.calls.Load() != 0 {
		t.Errorf("no Content-Type: %d", rec.Code)
	}

	for i, ct := range []string{"application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"} {
		rec := do(t, newHandler(&fakeSink{}), req{event: "push", body: body, contentType: ct, delivery: "ct-" + strconv.Itoa(i)})
		if rec.Code != http.StatusAccepted {
			t.Errorf("Content-Type %q: status %d, want 202", ct, rec.Code)
		}
	}
}

func TestTooLarge(t *testing.T) {
	small := mustJSON(t, pushPayload("refs/heads/main", sha2, sha1, false, false))
	pad := func(n int) []byte { // valid JSON of exactly n bytes
		b := bytes.Clone(bytes.TrimSuffix(small, []byte("}")))
		b = append(b, []byte(`,"padding":"`)...)
		b = append(b, bytes.Repeat([]byte("x"), n-len(b)-2)...)
		return append(b, '"', '}')
	}

	t.Run("explicit MaxBody", func(t *testing.T) {
		const limit = 4096
		exact := pad(limit)
		if len(exact) != limit || !json.Valid(exact) {
			t.Fatal("bad padding helper")
		}
		sink := &fakeSink{}
		h := newHandler(sink)
		h.MaxBody = limit
		if rec := do(t, h, req{event: "push", body: exact, delivery: "a"}); rec.Code != http.StatusAccepted {
			t.Fatalf("body of exactly MaxBody: %d %s", rec.Code, rec.Body)
		}
		over := pad(limit + 1)
		if rec := do(t, h, req{event: "push", body: over, delivery: "b"}); rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("MaxBody+1 with Content-Length: %d", rec.Code)
		}
		// Unknown length (chunked): the MaxBytesReader must catch it while reading.
		hr := httptest.NewRequest(http.MethodPost, "/", io.MultiReader(bytes.NewReader(over)))
		hr.ContentLength = -1
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("X-GitHub-Event", "push")
		hr.Header.Set("X-GitHub-Delivery", "c")
		hr.Header.Set("X-Hub-Signature-256", sign(testSecret, over))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, hr)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("MaxBody+1 chunked: %d", rec.Code)
		}
		if sink.calls.Load() != 1 {
			t.Fatalf("offers = %d, want 1 (only the exact-size body)", sink.calls.Load())
		}
	})

	t.Run("default 1 MiB", func(t *testing.T) {
		sink := &fakeSink{}
		obs := &observer{}
		h := newHandler(sink)
		h.Observe = obs.observe
		rec := do(t, h, req{event: "push", body: pad(1<<20 + 1)})
		if rec.Code != http.StatusRequestEntityTooLarge || sink.calls.Load() != 0 {
			t.Fatalf("1 MiB + 1: %d", rec.Code)
		}
		if o := obs.all(); o[0] != (observation{"push", OutcomeTooLarge}) {
			t.Fatalf("observed %v", o)
		}
		if rec := do(t, h, req{event: "push", body: pad(1 << 20)}); rec.Code != http.StatusAccepted {
			t.Fatalf("1 MiB: %d %s", rec.Code, rec.Body)
		}
	})
}

func TestMethodNotAllowed(t *testing.T) {
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		sink := &fakeSink{}
		rec := do(t, newHandler(sink), req{method: m, event: "push", body: mustJSON(t, pushPayload("refs/heads/main", sha2, sha1, false, false))})
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" || sink.calls.Load() != 0 {
			t.Errorf("%s: status %d Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

func TestBadHeaders(t *testing.T) {
	body := mustJSON(t, pushPayload("refs/heads/main", sha2, sha1, false, false))
	for name, r := range map[string]req{
		"no event":             {noEvent: true},
		"no delivery":          {noDelivery: true, event: "push"},
		"no event on ping":     {noEvent: true, body: mustJSON(t, pingPayload())},
		"delivery too long":    {event: "push", delivery: strings.Repeat("a", 200)},
		"delivery has control": {event: "push", delivery: "abc\x7f"},
	} {
		t.Run(name, func(t *testing.T) {
			sink := &fakeSink{}
			if r.body == nil {
				r.body = body
			}
			rec := do(t, newHandler(sink), r)
			if rec.Code != http.StatusBadRequest || sink.calls.Load() != 0 {
				t.Fatalf("status %d, want 400; %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestDuplicateDelivery(t *testing.T) {
	sink := &fakeSink{}
	obs := &observer{}
	h := newHandler(sink)
	h.Observe = obs.observe
	body := mustJSON(t, pushPayload("refs/heads/feature/cart", sha2, sha1, false, false))
	r := req{event: "push", delivery: "0b989ba4-242f-11e5-81e1-c7b6966d2516", body: body}
	if rec := do(t, h, r); rec.Code != http.StatusAccepted {
		t.Fatalf("first: %d", rec.Code)
	}
	rec := do(t, h, r)
	if rec.Code != http.StatusOK || decodeBody(t, rec)["duplicate"] != true {
		t.Fatalf("redelivery: %d %s", rec.Code, rec.Body)
	}
	if n := sink.calls.Load(); n != 1 {
		t.Fatalf("Offer called %d times, want 1", n)
	}
	// Same payload, new delivery ID: a real new event.
	r.delivery = "1c989ba4-242f-11e5-81e1-c7b6966d2516"
	if rec := do(t, h, r); rec.Code != http.StatusAccepted || sink.calls.Load() != 2 {
		t.Fatalf("new delivery: %d, offers %d", rec.Code, sink.calls.Load())
	}
	want := []observation{{"push", OutcomeQueued}, {"push", OutcomeDuplicate}, {"push", OutcomeQueued}}
	if got := obs.all(); !reflect.DeepEqual(got, want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
}

func TestConcurrentDuplicateDeliveries(t *testing.T) {
	sink := &fakeSink{delay: 5 * time.Millisecond} // widen the window in which twins overlap
	h := newHandler(sink)
	body := mustJSON(t, prPayload("synchronize", 42, "feature/cart", sha1, repoName, "main"))
	const n = 50
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i] = do(t, h, req{event: "pull_request", delivery: "same-delivery", body: body}).Code
		}()
	}
	close(start)
	wg.Wait()
	if c := sink.calls.Load(); c != 1 {
		t.Fatalf("Offer called %d times for one delivery, want exactly 1", c)
	}
	var accepted, dup int
	for _, c := range codes {
		switch c {
		case http.StatusAccepted:
			accepted++
		case http.StatusOK:
			dup++
		default:
			t.Fatalf("unexpected status %d", c)
		}
	}
	if accepted != 1 || dup != n-1 {
		t.Fatalf("%d accepted, %d duplicates; want 1 and %d", accepted, dup, n-1)
	}
}

func TestBusyThenRetry(t *testing.T) {
	sink := &fakeSink{}
	sink.busy.Store(1)
	obs := &observer{}
	h := newHandler(sink)
	h.Observe = obs.observe
	r := req{event: "push", delivery: "busy-1", body: mustJSON(t, pushPayload("refs/heads/feature/cart", sha2, sha1, false, false))}

	rec := do(t, h, r)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" {
		t.Fatalf("busy: %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if len(sink.got()) != 0 {
		t.Fatal("busy offer recorded an event")
	}
	// GitHub (or an operator) redelivers the same delivery: not a duplicate.
	if rec := do(t, h, r); rec.Code != http.StatusAccepted {
		t.Fatalf("retry after busy: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, r); rec.Code != http.StatusOK {
		t.Fatalf("third delivery should be a duplicate: %d", rec.Code)
	}
	if got := sink.got(); len(got) != 1 || got[0].Delivery != "busy-1" {
		t.Fatalf("events %+v", got)
	}
	want := []observation{{"push", OutcomeBusy}, {"push", OutcomeQueued}, {"push", OutcomeDuplicate}}
	if got := obs.all(); !reflect.DeepEqual(got, want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
}

// A twin that arrives while the first copy is being offered waits; when the
// first copy fails with ErrBusy, the twin takes over instead of being dropped
// as a duplicate.
func TestTwinTakesOverAfterBusy(t *testing.T) {
	sink := &fakeSink{gate: make(chan struct{}), entered: make(chan struct{}, 2)}
	sink.busy.Store(1)
	h := newHandler(sink)
	waiting := make(chan struct{}, 1)
	h.testHook = func() { waiting <- struct{}{} }
	r := req{event: "push", delivery: "twin", body: mustJSON(t, pushPayload("refs/heads/feature/cart", sha2, sha1, false, false))}

	codes := make(chan int, 2)
	go func() { codes <- do(t, h, r).Code }()
	<-sink.entered // first copy is inside Offer
	go func() { codes <- do(t, h, r).Code }()
	<-waiting // second copy is waiting on the first
	sink.gate <- struct{}{}
	first := <-codes
	<-sink.entered // second copy took over
	sink.gate <- struct{}{}
	second := <-codes
	if first != http.StatusServiceUnavailable || second != http.StatusAccepted {
		t.Fatalf("statuses %d, %d; want 503 then 202", first, second)
	}
	if sink.calls.Load() != 2 || len(sink.got()) != 1 {
		t.Fatalf("offers %d, events %d", sink.calls.Load(), len(sink.got()))
	}
}

func TestTwinGivesUpWhenClientLeaves(t *testing.T) {
	sink := &fakeSink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	h := newHandler(sink)
	ctx, cancel := context.WithCancel(context.Background())
	h.testHook = cancel
	r := req{event: "push", delivery: "leaver", body: mustJSON(t, pushPayload("refs/heads/feature/cart", sha2, sha1, false, false))}
	done := make(chan int)
	go func() { done <- do(t, h, r).Code }()
	<-sink.entered
	r.ctx = ctx
	if code := do(t, h, r).Code; code != http.StatusServiceUnavailable {
		t.Fatalf("abandoned twin: %d", code)
	}
	close(sink.gate)
	if code := <-done; code != http.StatusAccepted {
		t.Fatalf("first copy: %d", code)
	}
}

func TestSinkError(t *testing.T) {
	sink := &fakeSink{err: errors.New("disk on fire")}
	obs := &observer{}
	h := newHandler(sink)
	h.Observe = obs.observe
	r := req{event: "delete", delivery: "err-1", body: mustJSON(t, refPayload("feature/cart", "branch"))}
	rec := do(t, h, r)
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "disk") {
		t.Fatalf("sink error: %d %s", rec.Code, rec.Body)
	}
	sink.err = nil
	if rec := do(t, h, r); rec.Code != http.StatusAccepted {
		t.Fatalf("retry after 500 must not be a duplicate: %d", rec.Code)
	}
	if got := obs.all(); got[0].outcome != OutcomeError {
		t.Fatalf("observed %v", got)
	}

	// No sink at all is a server error too, not a panic.
	h2 := &Handler{Secret: []byte(testSecret)}
	if rec := do(t, h2, r); rec.Code != http.StatusInternalServerError {
		t.Fatalf("nil sink: %d", rec.Code)
	}
}

func TestFilter(t *testing.T) {
	sink := &fakeSink{}
	obs := &observer{}
	h := newHandler(sink)
	h.Observe = obs.observe
	var seen []Event
	h.Filter = func(ev Event) (bool, string) {
		seen = append(seen, ev)
		if ev.PR != 0 && !contains(ev.Labels, "preview") {
			return false, "pull request without preview label"
		}
		if !strings.HasPrefix(ev.Branch, "feature/") {
			return false, ""
		}
		return true, ""
	}
	cases := []struct {
		delivery string
		event    string
		payload  any
		status   int
		reason   string
	}{
		{"f1", "push", pushPayload("refs/heads/feature/cart", sha2, sha1, false, false), 202, ""},
		{"f2", "push", pushPayload("refs/heads/experiment", sha2, sha1, false, false), 202, "filtered"},
		{"f3", "pull_request", prPayload("opened", 5, "feature/x", sha1, repoName, "main"), 202, "pull request without preview label"},
		{"f4", "pull_request", prPayload("labeled", 5, "feature/x", sha1, repoName, "main", "preview"), 202, ""},
	}
	for _, c := range cases {
		rec := do(t, h, req{event: c.event, delivery: c.delivery, body: mustJSON(t, c.payload)})
		body := decodeBody(t, rec)
		if rec.Code != c.status {
			t.Fatalf("%s: %d", c.delivery, rec.Code)
		}
		if c.reason == "" && body["queued"] != true {
			t.Fatalf("%s: not queued: %v", c.delivery, body)
		}
		if c.reason != "" && (body["ignored"] != true || body["reason"] != c.reason) {
			t.Fatalf("%s: %v, want ignored with reason %q", c.delivery, body, c.reason)
		}
	}
	if got := sink.got(); len(got) != 2 || got[0].Delivery != "f1" || got[1].Delivery != "f4" {
		t.Fatalf("queued %+v", got)
	}
	// The filter sees fully mapped events.
	if len(seen) != 4 || seen[3].PR != 5 || seen[3].Parent != "main" || seen[3].Delivery != "f4" || !seen[3].Received.Equal(fixedNow) {
		t.Fatalf("filter saw %+v", seen)
	}
	// A filtered delivery is not remembered: after a config change it can be redelivered.
	h.Filter = nil
	if rec := do(t, h, req{event: "push", delivery: "f2", body: mustJSON(t, cases[1].payload)}); rec.Code != 202 || decodeBody(t, rec)["queued"] != true {
		t.Fatalf("redelivery of filtered: %d %s", rec.Code, rec.Body)
	}
	want := []string{OutcomeQueued, OutcomeIgnored, OutcomeIgnored, OutcomeQueued, OutcomeQueued}
	for i, o := range obs.all() {
		if o.outcome != want[i] {
			t.Fatalf("observation %d = %v, want %s", i, o, want[i])
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestObserveOutcomes(t *testing.T) {
	sink := &fakeSink{}
	obs := &observer{}
	h := newHandler(sink)
	h.Observe = obs.observe
	h.MaxBody = 8 << 10
	push := mustJSON(t, pushPayload("refs/heads/main", sha2, sha1, false, false))

	do(t, h, req{event: "push", delivery: "o1", body: push})
	do(t, h, req{event: "push", delivery: "o1", body: push})
	do(t, h, req{event: "push", delivery: "o2", body: mustJSON(t, pushPayload("refs/tags/v1", zeroSHA, sha1, true, false))})
	do(t, h, req{event: "push", delivery: "o3", body: push, signature: ptr("sha256=00")})
	do(t, h, req{event: "x-attacker-\u2603-label", delivery: "o3", body: push, signature: ptr("")})
	do(t, h, req{event: "push", delivery: "o4", body: []byte("{")})
	do(t, h, req{event: "push", delivery: "o5", body: bytes.Repeat([]byte(" "), 9<<10)})
	do(t, h, req{event: "push", delivery: "o6", body: push, contentType: "text/plain"})
	sink.busy.Store(1)
	do(t, h, req{event: "push", delivery: "o7", body: push})
	do(t, h, req{event: "ping", delivery: "o8", body: mustJSON(t, pingPayload())})
	do(t, h, req{method: http.MethodGet, event: "push", delivery: "o9"})
	do(t, h, req{event: "check_suite", delivery: "o10", body: []byte(`{"action":"completed"}`)})
	do(t, h, req{event: "Weird Event!", delivery: "o11", body: []byte(`{}`)})

	want := []observation{
		{"push", OutcomeQueued},
		{"push", OutcomeDuplicate},
		{"push", OutcomeIgnored},
		{"push", OutcomeUnauthorized},
		{"unknown", OutcomeUnauthorized}, // unauthenticated names never become metric labels
		{"push", OutcomeBadRequest},
		{"push", OutcomeTooLarge},
		{"push", OutcomeUnsupportedMediaType},
		{"push", OutcomeBusy},
		{"ping", OutcomePong},
		{"push", OutcomeMethodNotAllowed},
		{"check_suite", OutcomeIgnored},
		{"unknown", OutcomeIgnored},
	}
	if got := obs.all(); !reflect.DeepEqual(got, want) {
		t.Fatalf("observed\n%v\nwant\n%v", got, want)
	}
}

func TestLogsNeverContainSecretOrSignature(t *testing.T) {
	var buf bytes.Buffer
	sink := &fakeSink{}
	h := newHandler(sink)
	h.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	body := mustJSON(t, pushPayload("refs/heads/feature/cart", sha2, sha1, false, false))
	forged := mustJSON(t, pushPayload("refs/heads/production", sha2, sha1, false, false))

	// A real HMAC made with the real secret, but over another body.
	sigOther := sign(testSecret, forged)
	// A signature made with a wrong secret over this body.
	sigWrong := sign("guessed-secret", body)
	valid := sign(testSecret, body)

	for i, sig := range []string{sigOther, sigWrong} {
		rec := do(t, h, req{event: "push", delivery: "log-" + strconv.Itoa(i), body: body, signature: ptr(sig)})
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("status %d", rec.Code)
		}
	}
	do(t, h, req{event: "push", delivery: "log-ok", body: body}) // a good one, signed with `valid`

	out := buf.String()
	for _, secret := range []string{testSecret, sigOther, sigWrong, valid,
		strings.TrimPrefix(sigOther, "sha256="), strings.TrimPrefix(sigWrong, "sha256="), strings.TrimPrefix(valid, "sha256="),
		strings.TrimPrefix(valid, "sha256=")[:16]} {
		if strings.Contains(out, secret) {
			t.Fatalf("log output contains %q:\n%s", secret, out)
		}
	}
	if strings.Contains(strings.ToLower(out), "x-hub-signature") {
		t.Fatalf("log output mentions the signature header:\n%s", out)
	}

	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 log records, got %d:\n%s", len(lines), out)
	}
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		wantOutcome, wantDelivery := OutcomeUnauthorized, "log-"+strconv.Itoa(i)
		if i == 2 {
			wantOutcome, wantDelivery = OutcomeQueued, "log-ok"
			if rec["branch"] != "feature/cart" || rec["level"] != "INFO" {
				t.Fatalf("queued record: %v", rec)
			}
		} else if rec["level"] != "WARN" {
			t.Fatalf("unauthorized record level: %v", rec)
		}
		if rec["outcome"] != wantOutcome || rec["delivery"] != wantDelivery || rec["event"] != "push" {
			t.Fatalf("record %d: %v", i, rec)
		}
	}
}

func TestDedupeIsBounded(t *testing.T) {
	sink := &fakeSink{}
	h := newHandler(sink)
	h.dedupeSize = 3
	body := mustJSON(t, pushPayload("refs/heads/main", sha2, sha1, false, false))
	for i := range 5 {
		if rec := do(t, h, req{event: "push", delivery: "b" + strconv.Itoa(i), body: body}); rec.Code != 202 {
			t.Fatalf("delivery %d: %d", i, rec.Code)
		}
	}
	if n := h.seen.len(); n != 3 {
		t.Fatalf("dedupe set holds %d IDs, want 3", n)
	}
	// b4 is remembered; b0 was evicted and is processed again.
	if rec := do(t, h, req{event: "push", delivery: "b4", body: body}); rec.Code != http.StatusOK {
		t.Fatalf("recent ID: %d", rec.Code)
	}
	if rec := do(t, h, req{event: "push", delivery: "b0", body: body}); rec.Code != http.StatusAccepted {
		t.Fatalf("evicted ID: %d", rec.Code)
	}
	if sink.calls.Load() != 6 {
		t.Fatalf("offers %d", sink.calls.Load())
	}
}

type discardSink struct{}

func (discardSink) Offer(Event) error { return nil }

func BenchmarkServeHTTPPush(b *testing.B) {
	h := &Handler{Secret: []byte(testSecret), Sink: discardSink{}}
	body := mustJSON(b, pushPayload("refs/heads/feature/cart", sha2, sha1, false, false))
	sig := sign(testSecret, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-GitHub-Event", "push")
		r.Header.Set("X-GitHub-Delivery", "bench-"+strconv.Itoa(i))
		r.Header.Set("X-Hub-Signature-256", sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d", w.Code)
		}
	}
}
