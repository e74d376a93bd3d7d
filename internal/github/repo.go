package github

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Repo names a GitHub repository.
type Repo struct{ Owner, Name string }

// String returns "OWNER/NAME".
func (r Repo) String() string { return r.Owner + "/" + r.Name }

// IsZero reports whether r is the zero Repo.
func (r Repo) IsZero() bool { return r.Owner == "" && r.Name == "" }

var (
	// GitHub logins: alphanumerics and single hyphens; Enterprise Managed
	// Users add an underscore suffix. Be liberal but refuse anything that
	// could change the meaning of a URL path.
	ownerRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,98}[A-Za-z0-9_])?$`)
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
)

func (r Repo) validate() error {
	if !ownerRE.MatchString(r.Owner) {
		return fmt.Errorf("invalid repository owner %q", r.Owner)
	}
	if !nameRE.MatchString(r.Name) || r.Name == "." || r.Name == ".." {
		return fmt.Errorf("invalid repository name %q", r.Name)
	}
	return nil
}

// ParseRepo parses "OWNER/NAME" (as given to --github-repo).
func ParseRepo(s string) (Repo, error) {
	owner, name, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok || strings.Contains(name, "/") {
		return Repo{}, fmt.Errorf("github: repository %q: want OWNER/NAME", s)
	}
	r := Repo{Owner: owner, Name: name}
	if err := r.validate(); err != nil {
		return Repo{}, fmt.Errorf("github: repository %q: %w", s, err)
	}
	return r, nil
}

// RepoFromRemote derives the repository from a git remote URL:
// https://HOST/OWNER/NAME(.git), git@HOST:OWNER/NAME(.git),
// ssh://git@HOST(:PORT)/OWNER/NAME(.git), git://HOST/OWNER/NAME(.git).
// HOST is github.com or a GitHub Enterprise host (see ParseRemote for the host).
func RepoFromRemote(remote string) (Repo, error) {
	_, r, err := ParseRemote(remote)
	return r, err
}

// ParseRemote is RepoFromRemote that also returns the host (lower-cased,
// without port or credentials), e.g. to tell github.com from a GitHub Enterprise Server host.
// Errors never repeat credentials embedded in the URL.
func ParseRemote(remote string) (host string, repo Repo, err error) {
	s := strings.TrimSpace(remote)
	shown := redactURL(s)
	fail := func(why string) (string, Repo, error) {
		return "", Repo{}, fmt.Errorf("github: remote %q is not a GitHub repository URL: %s", shown, why)
	}
	if s == "" {
		return fail("empty")
	}
	var path string
	switch {
	case strings.Contains(s, "://"):
		u, perr := url.Parse(s)
		if perr != nil {
			return fail("unparsable URL")
		}
		switch strings.ToLower(u.Scheme) {
		case "https", "http", "ssh", "git", "git+ssh", "ssh+git":
		default:
			return fail("unsupported scheme " + u.Scheme)
		}
		host, path = u.Hostname(), u.Path
	default:
		// scp-like syntax: [user@]host:path — but not a local path such as
		// ./x:y or C:\x (git's own rule: a colon before any slash).
		colon := strings.Index(s, ":")
		slash := strings.Index(s, "/")
		if colon <= 0 || (slash >= 0 && slash < colon) {
			return fail("not a URL (local paths have no GitHub repository)")
		}
		host, path = s[:colon], s[colon+1:]
		if at := strings.LastIndex(host, "@"); at >= 0 {
			host = host[at+1:]
		}
	}
	host = strings.ToLower(host)
	if host == "" {
		return fail("no host")
	}
	path = strings.Trim(path, "/")
	path = strings.TrimSuffix(path, ".git")
	parts := strings.Split(path, "/")
	if len(parts) != 2 {
		return fail("want OWNER/NAME after the host")
	}
	repo = Repo{Owner: parts[0], Name: parts[1]}
	if verr := repo.validate(); verr != nil {
		return fail(verr.Error())
	}
	return host, repo, nil
}

// redactURL hides userinfo other than the conventional "git" user
// (https://x-access-token:TOKEN@host/..., https://TOKEN@host/...).
func redactURL(s string) string {
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 || rest[:at] == "git" {
		return s
	}
	return prefix + "REDACTED@" + rest[at+1:]
}
