package github

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBaseAndGraphQLURLs(t *testing.T) {
	for in, want := range map[string][2]string{
		"":                                {"https://api.github.com/", "https://api.github.com/graphql"},
		"https://api.github.com":          {"https://api.github.com/", "https://api.github.com/graphql"},
		"https://ghe.example.com/api/v3":  {"https://ghe.example.com/api/v3/", "https://ghe.example.com/api/graphql"},
		"https://ghe.example.com/api/v3/": {"https://ghe.example.com/api/v3/", "https://ghe.example.com/api/graphql"},
		"http://127.0.0.1:8080":           {"http://127.0.0.1:8080/", "http://127.0.0.1:8080/graphql"},
	} {
		u, err := normalizeBaseURL(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if u.String() != want[0] || graphQLURLFor(u) != want[1] {
			t.Errorf("%q: %s %s", in, u, graphQLURLFor(u))
		}
	}
}

func TestRetryAfterAndBackoff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	resp := &http.Response{Header: http.Header{}}
	resp.Header.Set("Date", now.Format(http.TimeFormat))
	resp.Header.Set("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat))
	if d, ok := retryAfter(resp, now.Add(time.Hour)); !ok || d != 90*time.Second {
		t.Errorf("HTTP-date Retry-After (relative to the server's Date): %v %v", d, ok)
	}
	resp.Header.Set("Retry-After", "7")
	if d, ok := retryAfter(resp, now); !ok || d != 7*time.Second {
		t.Errorf("%v %v", d, ok)
	}
	// A reset in GitHub's clock, converted to ours despite a 1h skew.
	resp.Header.Set("X-RateLimit-Reset", fmt.Sprint(now.Add(30*time.Second).Unix()))
	if r, ok := resetTime(resp, now.Add(time.Hour)); !ok || !r.Equal(now.Add(time.Hour+30*time.Second)) {
		t.Errorf("reset %v", r)
	}
	var got []time.Duration
	for a := 1; a <= 8; a++ {
		got = append(got, backoff(a))
	}
	if fmt.Sprint(got) != "[1s 2s 4s 8s 16s 30s 30s 30s]" {
		t.Errorf("backoff %v", got)
	}
}

func TestCredentialsPrintRedacted(t *testing.T) {
	a := StaticToken("ghp_secret_value_1234")
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(f, a); strings.Contains(s, "secret") {
			t.Errorf("%s: %s", f, s)
		}
		if s := fmt.Sprintf(f, Options{Auth: a}); strings.Contains(s, "secret") {
			t.Errorf("%s: %s", f, s)
		}
	}
	if _, err := New(Options{Auth: StaticToken("")}); err == nil {
		t.Error("an empty token was accepted")
	}
	r := &redactor{}
	r.add("short") // too short to be a credential; never redacted (would mangle text)
	r.add("ghs_0123456789")
	if got := r.scrub("a short ghs_0123456789 b"); got != "a short REDACTED b" {
		t.Errorf("%q", got)
	}
}

// A hung attempt is cut by the per-attempt timeout (HTTPClient.Timeout) and
// retried like any transport error.
func TestHungRequestIsRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"number": 3, "state": "open", "head": {"ref": "b", "sha": "abc"}}]`)
	}))
	defer srv.Close()
	var slept []time.Duration
	c, err := New(Options{BaseURL: srv.URL, Auth: StaticToken("ghp_0123456789"), HTTPClient: &http.Client{Timeout: 100 * time.Millisecond},
		Sleep: func(d time.Duration) { slept = append(slept, d) }})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pr, err := c.FindPR(context.Background(), Repo{"acme", "x"}, "b", "open")
	if err != nil || pr == nil || pr.Number != 3 {
		t.Fatalf("pr=%+v err=%v", pr, err)
	}
	if n.Load() != 2 || len(slept) != 1 || time.Since(start) > 3*time.Second {
		t.Errorf("requests=%d slept=%v took %v", n.Load(), slept, time.Since(start))
	}
}
