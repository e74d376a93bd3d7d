package generator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"
)

// MaxEnvNameLength bounds an environment name so that every object derived
// from it stays within Kubernetes' limits: the CNPG Cluster name
// "<env>-pg<N>" (≤ 50, DNS-1035) and the namespace "<prefix><env>" (≤ 63,
// with a prefix of at most MaxNamespacePrefixLength).
const (
	MaxEnvNameLength         = 40
	MaxNamespacePrefixLength = 63 - MaxEnvNameLength
	hashLength               = 6
)

var dns1035Label = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// BranchError says why a branch name cannot be used.
type BranchError struct {
	Branch string
	Reason string
}

func (e *BranchError) Error() string {
	return fmt.Sprintf("invalid branch name %q: %s", e.Branch, e.Reason)
}

// ValidateBranch accepts exactly the branch names git accepts
// (git check-ref-format --branch) and says which rule a refused name breaks.
func ValidateBranch(branch string) error {
	fail := func(reason string) error { return &BranchError{Branch: branch, Reason: reason} }
	switch {
	case branch == "":
		return fail("it is empty")
	case !utf8.ValidString(branch):
		return fail("it is not valid UTF-8")
	case strings.HasPrefix(branch, "-"):
		return fail("it starts with '-'")
	case branch == "HEAD" || branch == "@":
		return fail("it is reserved by git")
	case strings.HasPrefix(branch, "refs/"):
		return fail("give the short branch name, not a full ref")
	case strings.Contains(branch, ".."):
		return fail("it contains '..'")
	case strings.Contains(branch, "@{"):
		return fail("it contains '@{'")
	case strings.HasSuffix(branch, "."):
		return fail("it ends with '.'")
	case strings.HasPrefix(branch, "/") || strings.HasSuffix(branch, "/"):
		return fail("it starts or ends with '/'")
	case strings.Contains(branch, "//"):
		return fail("it contains '//'")
	}
	for _, r := range branch {
		if r < 0x20 || r == 0x7f {
			return fail(fmt.Sprintf("it contains the control character %U", r))
		}
		if strings.ContainsRune(" ~^:?*[\\", r) {
			return fail(fmt.Sprintf("it contains %q", r))
		}
	}
	for _, part := range strings.Split(branch, "/") {
		if strings.HasPrefix(part, ".") {
			return fail(fmt.Sprintf("component %q starts with '.'", part))
		}
		if strings.HasSuffix(part, ".lock") {
			return fail(fmt.Sprintf("component %q ends with '.lock'", part))
		}
	}
	// go-git's own rules as the final word, so we never accept what it refuses.
	if err := plumbing.NewBranchReferenceName(branch).Validate(); err != nil {
		return fail("git refuses it as a reference name")
	}
	return nil
}

// EnvName turns a branch name into a deterministic, DNS-1035 environment
// name of at most MaxEnvNameLength characters. When the slug loses
// information (case, characters replaced, truncation) a short hash of the
// raw name is appended, so distinct branches never share a name:
// "feature-login-page" stays itself, "feature/Login_Page" becomes
// "feature-login-page-<hash>".
func EnvName(branch string) (string, error) {
	if err := ValidateBranch(branch); err != nil {
		return "", err
	}
	if len(branch) <= MaxEnvNameLength && dns1035Label.MatchString(branch) {
		return branch, nil // already a valid name: keep it as it is
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(branch) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	slug := strings.Trim(b.String(), "-")
	if slug != "" && (slug[0] < 'a' || slug[0] > 'z') {
		slug = "b-" + slug // DNS-1035: must start with a letter
	}
	sum := sha256.Sum256([]byte(branch))
	suffix := hex.EncodeToString(sum[:])[:hashLength]
	if slug == "" {
		return "b-" + suffix, nil
	}
	if max := MaxEnvNameLength - hashLength - 1; len(slug) > max {
		slug = strings.TrimRight(slug[:max], "-")
	}
	return slug + "-" + suffix, nil
}

// ShortSHA is a commit SHA as offshoot shows it: its first 12 hex digits.
func ShortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
