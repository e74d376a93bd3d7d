package github_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/offshoot-dev/offshoot/internal/github"
)

func TestRepoFromRemote(t *testing.T) {
	for _, tc := range []struct {
		in, host, repo string // repo "" = error
	}{
		{"https://github.com/acme/shop-environments", "github.com", "acme/shop-environments"},
		{"https://github.com/acme/shop-environments.git", "github.com", "acme/shop-environments"},
		{"https://github.com/acme/shop-environments/", "github.com", "acme/shop-environments"},
		{"http://github.com/acme/shop.git", "github.com", "acme/shop"},
		{"https://x-access-token:ghs_abc@github.com/acme/shop.git", "github.com", "acme/shop"},
		{"https://GitHub.com/Acme/Shop.git", "github.com", "Acme/Shop"},
		{"git@github.com:acme/shop-environments.git", "github.com", "acme/shop-environments"},
		{"git@github.com:acme/shop-environments", "github.com", "acme/shop-environments"},
		{"org-123@github.com:acme/shop.git", "github.com", "acme/shop"},
		{"ssh://git@github.com/acme/shop-environments.git", "github.com", "acme/shop-environments"},
		{"ssh://git@github.com:22/acme/shop-environments.git", "github.com", "acme/shop-environments"},
		{"git://github.com/acme/shop.git", "github.com", "acme/shop"},
		{"https://ghe.example.com/platform/envs.git", "ghe.example.com", "platform/envs"},
		{"git@ghe.example.com:platform/envs.git", "ghe.example.com", "platform/envs"},
		{"ssh://git@ghe.example.com:2222/platform/envs", "ghe.example.com", "platform/envs"},
		{"  https://github.com/acme/my.repo.name.git\n", "github.com", "acme/my.repo.name"},
		{"", "", ""},
		{"/srv/git/envs", "", ""},
		{"./envs:x", "", ""},
		{"file:///srv/git/envs.git", "", ""},
		{"https://github.com/acme", "", ""},
		{"https://github.com/acme/shop/tree/main", "", ""},
		{"https://github.com/-acme/shop", "", ""},
		{"https://github.com/acme/..", "", ""},
		{"https://github.com/acme/sh op", "", ""},
		{"git@github.com:", "", ""},
		{"acme/shop", "", ""},
	} {
		host, repo, err := github.ParseRemote(tc.in)
		r, err2 := github.RepoFromRemote(tc.in)
		if tc.repo == "" {
			if err == nil || err2 == nil {
				t.Errorf("%q: accepted as %s %s", tc.in, host, repo)
			}
			continue
		}
		if err != nil || err2 != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if host != tc.host || repo.String() != tc.repo || r != repo {
			t.Errorf("%q: got %s %s, want %s %s", tc.in, host, repo, tc.host, tc.repo)
		}
	}
	_, err := github.RepoFromRemote("https://x-access-token:ghs_supersecret@github.com/acme")
	if err == nil || strings.Contains(err.Error(), "supersecret") || !strings.Contains(err.Error(), "REDACTED@github.com") {
		t.Errorf("credentials in the error: %v", err)
	}
}

func TestParseRepoAndAPIURL(t *testing.T) {
	if r, err := github.ParseRepo("acme/shop-environments"); err != nil || r != envRepo {
		t.Errorf("%v %v", r, err)
	}
	for _, bad := range []string{"", "acme", "acme/", "/shop", "acme/shop/x", "ac me/shop"} {
		if _, err := github.ParseRepo(bad); err == nil {
			t.Errorf("ParseRepo(%q) accepted", bad)
		}
	}
	for host, want := range map[string]string{
		"github.com": "https://api.github.com/", "": "https://api.github.com/", "ghe.example.com": "https://ghe.example.com/api/v3/",
	} {
		if got := github.APIURLForHost(host); got != want {
			t.Errorf("APIURLForHost(%q) = %q", host, got)
		}
	}
}

func TestTruncate(t *testing.T) {
	note := "… truncated: the full diff is in the commit"
	if got := github.Truncate("short", 100, note); got != "short" {
		t.Errorf("%q", got)
	}
	long := strings.Repeat("line of the diff\n", 100) // 1700 characters
	got := github.Truncate(long, 500, note)
	if utf8.RuneCountInString(got) > 500 || !strings.HasSuffix(got, "\n"+note) {
		t.Fatalf("len %d: %q", utf8.RuneCountInString(got), got)
	}
	body := strings.TrimSuffix(got, note)
	if !strings.HasSuffix(body, "line of the diff\n") || strings.Count(body, "\n") != strings.Count(body, "line of the diff\n") {
		t.Errorf("not cut after a whole line: %q", body)
	}
	// Multi-byte characters: counted as characters, never split.
	u := strings.Repeat("é", 1000)
	got = github.Truncate(u, 100, "[cut]")
	if !utf8.ValidString(got) || utf8.RuneCountInString(got) != 100 || !strings.HasSuffix(got, "\n[cut]") {
		t.Errorf("%d %q", utf8.RuneCountInString(got), got)
	}
	// A note longer than max is itself cut; max <= 0 is empty.
	if got := github.Truncate(long, 5, note); got != "… tru" {
		t.Errorf("%q", got)
	}
	if got := github.Truncate(long, 0, note); got != "" {
		t.Errorf("%q", got)
	}
	if got := github.Truncate(long, 10, ""); got != "line of th" {
		t.Errorf("%q", got)
	}
}

func TestDetailsBlock(t *testing.T) {
	got := github.DetailsBlock("Rendered manifests <before → after>", "- a: 1\n+ a: 2")
	want := "<details><summary>Rendered manifests &lt;before → after&gt;</summary>\n\n```\n- a: 1\n+ a: 2\n```\n\n</details>\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Backticks in the content: the fence is longer than any run.
	content := "x: |\n  ```\n  code\n  ```\ny: \"````\"\n"
	got = github.DetailsBlock("multi\nline", content)
	if !strings.Contains(got, "\n`````\n"+content+"`````\n") {
		t.Errorf("fence not longer than the content's runs:\n%s", got)
	}
	if !strings.HasPrefix(got, "<details><summary>multi line</summary>\n\n") {
		t.Errorf("summary not on one line: %q", got)
	}
	if got := github.DetailsBlockLang("d", "diff", "+x\n"); got != "<details><summary>d</summary>\n\n```diff\n+x\n```\n\n</details>\n" {
		t.Errorf("%q", got)
	}
	if got := github.DetailsBlockLang("d", "x`y", "+x\n"); !strings.Contains(got, "```\n+x") {
		t.Errorf("bad info string kept: %q", got)
	}
	// Truncate then wrap: the block stays well-formed within the budget.
	big := strings.Repeat("+ line\n", 20000)
	block := github.DetailsBlock("diff", github.Truncate(big, 60000, "(truncated)"))
	if utf8.RuneCountInString(block) > github.MaxBodyLength || !strings.HasSuffix(block, "(truncated)\n```\n\n</details>\n") {
		t.Errorf("len %d, tail %q", utf8.RuneCountInString(block), block[len(block)-40:])
	}
}
