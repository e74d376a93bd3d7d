package github_test

import (
	"strings"
	"testing"

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

func TestParseRepo(t *testing.T) {
	if r, err := github.ParseRepo("acme/shop-environments"); err != nil || r != envRepo {
		t.Errorf("%v %v", r, err)
	}
	for _, bad := range []string{"", "acme", "acme/", "/shop", "acme/shop/x", "ac me/shop"} {
		if _, err := github.ParseRepo(bad); err == nil {
			t.Errorf("ParseRepo(%q) accepted", bad)
		}
	}
}
