package generator

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var dns1035 = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

func TestEnvNameExamples(t *testing.T) {
	for branch, want := range map[string]string{
		"main":               "main",
		"staging":            "staging",
		"feature-login-page": "feature-login-page",
		"feature/Login_Page": "feature-login-page-", // + hash
		"feature_1":          "feature-1-",
		"1-hotfix":           "b-1-hotfix-",
		"___":                "b-",
		"Release/2026.11":    "release-2026-11-",
	} {
		got, err := EnvName(branch)
		if err != nil {
			t.Fatalf("EnvName(%q): %v", branch, err)
		}
		if strings.HasSuffix(want, "-") {
			if !strings.HasPrefix(got, want) || len(got) != len(want)+hashLength {
				t.Errorf("EnvName(%q) = %q, want %q + %d hex digits", branch, got, want, hashLength)
			}
		} else if got != want {
			t.Errorf("EnvName(%q) = %q, want %q", branch, got, want)
		}
	}
}

func TestEnvNamesDoNotCollide(t *testing.T) {
	a, _ := EnvName("feature/Login_Page")
	b, _ := EnvName("feature-login-page")
	c, _ := EnvName("feature/login-page")
	if a == b || a == c || b == c {
		t.Fatalf("collision: %q %q %q", a, b, c)
	}
	long1 := "feature/" + strings.Repeat("x", 80) + "-one"
	long2 := "feature/" + strings.Repeat("x", 80) + "-two"
	n1, _ := EnvName(long1)
	n2, _ := EnvName(long2)
	if n1 == n2 || len(n1) > MaxEnvNameLength || len(n2) > MaxEnvNameLength {
		t.Fatalf("truncated names %q %q must differ and fit %d", n1, n2, MaxEnvNameLength)
	}
}

func TestValidateBranchRefusesWhatGitRefuses(t *testing.T) {
	for branch, reason := range map[string]string{
		"":             "empty",
		"a..b":         "'..'",
		"-x":           "starts with '-'",
		"x.lock":       ".lock",
		"feat/x.lock":  ".lock",
		"a\x01b":       "control character",
		"a\x7fb":       "control character",
		"with space":   `' '`,
		"a~1":          `'~'`,
		"a^b":          `'^'`,
		"a:b":          `':'`,
		"a?b":          `'?'`,
		"a*b":          `'*'`,
		"a[b":          `'['`,
		"a\\b":         `'\\'`,
		"a@{b":         "'@{'",
		"@":            "reserved",
		"HEAD":         "reserved",
		"x.":           "ends with '.'",
		"/x":           "'/'",
		"x/":           "'/'",
		"a//b":         "'//'",
		"a/.hidden":    "starts with '.'",
		"refs/heads/x": "full ref",
		"\xff":         "UTF-8",
	} {
		err := ValidateBranch(branch)
		var be *BranchError
		if !errors.As(err, &be) {
			t.Errorf("ValidateBranch(%q) = %v, want a BranchError", branch, err)
			continue
		}
		if !strings.Contains(err.Error(), reason) {
			t.Errorf("ValidateBranch(%q) = %q, want the reason to mention %s", branch, err, reason)
		}
		if _, err := EnvName(branch); err == nil {
			t.Errorf("EnvName(%q) accepted an invalid branch", branch)
		}
	}
	for _, ok := range []string{"main", "feature/x", "feature_1", "Release/2026.11", "a-b.c", "ünïcode", "x@y"} {
		if err := ValidateBranch(ok); err != nil {
			t.Errorf("ValidateBranch(%q): %v", ok, err)
		}
	}
}

// FuzzEnvName: for every branch git accepts, the env name is a DNS-1035
// label within the limit, deterministic, equal to the branch only when the
// branch already is such a label, and different for different branches
// (checked against a second, related name).
func FuzzEnvName(f *testing.F) {
	for _, s := range []string{"main", "feature/Login_Page", "feature-login-page", "a..b", "-x", "x.lock", "Ünï/cødé", strings.Repeat("ab/", 40), "9", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, branch string) {
		name, err := EnvName(branch)
		if ValidateBranch(branch) != nil {
			if err == nil {
				t.Fatalf("EnvName(%q) accepted an invalid branch", branch)
			}
			return
		}
		if err != nil {
			t.Fatalf("EnvName(%q): %v", branch, err)
		}
		if len(name) > MaxEnvNameLength || !dns1035.MatchString(name) {
			t.Fatalf("EnvName(%q) = %q: not a DNS-1035 label of at most %d characters", branch, name, MaxEnvNameLength)
		}
		if again, _ := EnvName(branch); again != name {
			t.Fatalf("EnvName(%q) not deterministic: %q then %q", branch, name, again)
		}
		if name != branch && dns1035.MatchString(branch) && len(branch) <= MaxEnvNameLength {
			t.Fatalf("EnvName(%q) = %q: a branch that is already a valid name must keep it", branch, name)
		}
		other := branch + "_"
		if ValidateBranch(other) == nil {
			if n2, _ := EnvName(other); n2 == name {
				t.Fatalf("EnvName(%q) == EnvName(%q) == %q", branch, other, name)
			}
		}
	})
}
