package github

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	gh "github.com/google/go-github/v62/github"

	"github.com/offshoot-dev/offshoot/generator"
)

// MaxStatusDescription is GitHub's limit for a commit status description.
const MaxStatusDescription = 140

// SetStatus sets the commit status statusContext (e.g. "offshoot/feature-1") on
// sha (POST /repos/{o}/{r}/statuses/{sha}). state: pending, success,
// failure or error. The description is cut to 140 characters with "…";
// targetURL may be empty.
func (c *Client) SetStatus(ctx context.Context, repo Repo, sha, statusContext, state, description, targetURL string) error {
	op := fmt.Sprintf("set status %s on %s@%s", statusContext, repo, generator.ShortSHA(sha))
	if err := repo.validate(); err != nil {
		return &APIError{Op: op, Message: err.Error()}
	}
	switch state {
	case "pending", "success", "failure", "error":
	default:
		return &APIError{Op: op, Message: fmt.Sprintf("state %q: want pending, success, failure or error", state)}
	}
	if sha == "" || statusContext == "" {
		return &APIError{Op: op, Message: "need a commit SHA and a context"}
	}
	st := &gh.RepoStatus{State: gh.String(state), Context: gh.String(statusContext)}
	if d := oneLine(description); d != "" {
		if utf8.RuneCountInString(d) > MaxStatusDescription {
			d = cutRunes(d, MaxStatusDescription-1) + "…"
		}
		st.Description = gh.String(d)
	}
	if targetURL != "" {
		st.TargetURL = gh.String(targetURL)
	}
	// Statuses are append-only on GitHub: post only when the newest one of
	// this context says something else, so that re-running writes nothing.
	list, _, err := c.gh.Repositories.ListStatuses(ctx, repo.Owner, repo.Name, sha, &gh.ListOptions{PerPage: 100})
	if err != nil {
		return wrapErr(op, err, c.secrets)
	}
	for _, cur := range list {
		if cur.GetContext() != statusContext {
			continue
		}
		if cur.GetState() == st.GetState() && cur.GetDescription() == st.GetDescription() && cur.GetTargetURL() == st.GetTargetURL() {
			return nil
		}
		break // newest first: only the latest of the context counts
	}
	_, _, err = c.gh.Repositories.CreateStatus(ctx, repo.Owner, repo.Name, sha, st)
	return wrapErr(op, err, c.secrets)
}

var markerRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$`)

// Marker is the hidden line that identifies offshoot's comment for name:
// "<!-- offshoot:NAME -->".
func Marker(name string) string { return "<!-- offshoot:" + name + " -->" }

// UpsertComment keeps exactly one comment of ours on the PR (issue)
// prNumber, identified by the hidden Marker(marker) line that it prepends
// to body. It lists all the PR's comments (every page), edits ours only if
// its text differs, and creates it only if there is none — never a second
// one: a create that fails ambiguously (5xx, lost connection) is followed by
// a re-read, not by a blind repeat. created: a comment was created; changed:
// anything was written.
func (c *Client) UpsertComment(ctx context.Context, repo Repo, prNumber int, marker, body string) (created bool, changed bool, err error) {
	op := fmt.Sprintf("upsert comment %s on %s#%d", marker, repo, prNumber)
	if err := repo.validate(); err != nil {
		return false, false, &APIError{Op: op, Message: err.Error()}
	}
	if prNumber <= 0 {
		return false, false, &APIError{Op: op, Message: "need a positive pull request number"}
	}
	if !markerRE.MatchString(marker) || strings.Contains(marker, "--") {
		return false, false, &APIError{Op: op, Message: fmt.Sprintf("marker %q: want [A-Za-z0-9._:/-], no \"--\", at most 100 characters", marker)}
	}
	full := Marker(marker) + "\n" + body
	if n := utf8.RuneCountInString(full); n > MaxBodyLength {
		return false, false, &APIError{Op: op, Message: fmt.Sprintf("comment has %d characters, more than GitHub's %d (shorten it)", n, MaxBodyLength)}
	}

	existing, err := c.findComment(ctx, repo, prNumber, marker)
	if err != nil {
		return false, false, err
	}
	if existing != nil {
		if normalizeBody(existing.GetBody()) == normalizeBody(full) {
			return false, false, nil
		}
		eop := fmt.Sprintf("edit comment %d on %s#%d", existing.GetID(), repo, prNumber)
		_, _, err := c.gh.Issues.EditComment(ctx, repo.Owner, repo.Name, existing.GetID(), &gh.IssueComment{Body: gh.String(full)})
		if err != nil {
			return false, false, wrapErr(eop, err, c.secrets)
		}
		return false, true, nil
	}
	cop := fmt.Sprintf("create comment on %s#%d", repo, prNumber)
	err = c.ambiguousWrite(ctx, cop, func(ctx context.Context) error {
		_, _, err := c.gh.Issues.CreateComment(ctx, repo.Owner, repo.Name, prNumber, &gh.IssueComment{Body: gh.String(full)})
		return err
	}, func(ctx context.Context) (bool, error) {
		got, err := c.findComment(ctx, repo, prNumber, marker)
		return got != nil, err
	})
	if err != nil {
		return false, false, err
	}
	return true, true, nil
}

// findComment returns the oldest comment that starts with marker's line, or nil.
func (c *Client) findComment(ctx context.Context, repo Repo, number int, marker string) (*gh.IssueComment, error) {
	op := fmt.Sprintf("list comments on %s#%d", repo, number)
	line := Marker(marker)
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		page, resp, err := c.gh.Issues.ListComments(ctx, repo.Owner, repo.Name, number, opts)
		if err != nil {
			return nil, wrapErr(op, err, c.secrets)
		}
		for _, cm := range page {
			// Ours start with the marker line; a person quoting it elsewhere
			// in a comment does not make that comment ours.
			if b := normalizeBody(cm.GetBody()); strings.HasPrefix(b, line+"\n") || b == line {
				return cm, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opts.Page = resp.NextPage
	}
}
