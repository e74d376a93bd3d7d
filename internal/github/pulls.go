package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	gh "github.com/google/go-github/v62/github"
)

// MaxBodyLength is GitHub's limit, in characters, for the body of a pull
// request or a comment.
const MaxBodyLength = 65536

// PRSpec is the pull request offshoot wants for a head branch.
type PRSpec struct {
	Repo        Repo
	Head, Base  string // branch names in Repo (no OWNER: prefix)
	Title, Body string
	Labels      []string // ensured present; labels added by people are kept
	AutoMerge   bool
	MergeMethod string // for AutoMerge: "merge" (default), "squash" or "rebase"
}

// PR is a pull request as offshoot sees it.
type PR struct {
	Number    int
	URL       string // html_url
	State     string // "open" or "closed"
	Merged    bool
	HeadSHA   string
	NodeID    string // GraphQL id
	Head      string
	Base      string
	Title     string
	Body      string
	Labels    []string
	AutoMerge bool // GitHub auto-merge is enabled on it
}

func toPR(p *gh.PullRequest) *PR {
	if p == nil {
		return nil
	}
	out := &PR{
		Number: p.GetNumber(), URL: p.GetHTMLURL(), State: p.GetState(),
		Merged: p.GetMerged() || p.MergedAt != nil, HeadSHA: p.GetHead().GetSHA(), NodeID: p.GetNodeID(),
		Head: p.GetHead().GetRef(), Base: p.GetBase().GetRef(), Title: p.GetTitle(), Body: p.GetBody(),
		AutoMerge: p.AutoMerge != nil,
	}
	for _, l := range p.Labels {
		out.Labels = append(out.Labels, l.GetName())
	}
	return out
}

func validState(s string) bool { return s == "open" || s == "closed" || s == "all" }

// FindPR returns the pull request whose head is branch head of repo
// (GET /repos/{o}/{r}/pulls?head=OWNER:HEAD&state=…), preferring an open
// one, else the most recent; nil when there is none. state "" means "open".
func (c *Client) FindPR(ctx context.Context, repo Repo, head string, state string) (*PR, error) {
	p, err := c.findPR(ctx, repo, head, state)
	return toPR(p), err
}

// FindPRForBranch returns the open pull request of repo whose head is branch
// (the app repo's PR for a pushed branch), or nil.
func (c *Client) FindPRForBranch(ctx context.Context, repo Repo, branch string) (*PR, error) {
	return c.FindPR(ctx, repo, branch, "open")
}

func (c *Client) findPR(ctx context.Context, repo Repo, head, state string) (*gh.PullRequest, error) {
	op := fmt.Sprintf("find pull request %s %s", repo, head)
	if state == "" {
		state = "open"
	}
	if err := repo.validate(); err != nil {
		return nil, &APIError{Op: op, Message: err.Error()}
	}
	if head == "" || !validState(state) {
		return nil, &APIError{Op: op, Message: fmt.Sprintf("need a head branch and a state of open, closed or all (got %q, %q)", head, state)}
	}
	opts := &gh.PullRequestListOptions{State: state, Head: repo.Owner + ":" + head, ListOptions: gh.ListOptions{PerPage: 100}}
	var best *gh.PullRequest
	for {
		page, resp, err := c.gh.PullRequests.List(ctx, repo.Owner, repo.Name, opts)
		if err != nil {
			return nil, wrapErr(op, err, c.secrets)
		}
		for _, p := range page {
			// Never trust the filter blindly (GitHub ignores a malformed
			// one): same branch, and not a fork's branch of the same name.
			if p.GetHead().GetRef() != head {
				continue
			}
			if hr := p.GetHead().GetRepo(); hr != nil && !strings.EqualFold(hr.GetOwner().GetLogin(), repo.Owner) {
				continue
			}
			if best == nil || better(p, best) {
				best = p
			}
		}
		if resp.NextPage == 0 {
			return best, nil
		}
		opts.Page = resp.NextPage
	}
}

func better(a, b *gh.PullRequest) bool {
	ao, bo := a.GetState() == "open", b.GetState() == "open"
	if ao != bo {
		return ao
	}
	return a.GetNumber() > b.GetNumber()
}

// UpsertPR makes the open pull request for spec.Head look like spec, with
// as few writes as possible: it finds the open PR by head branch; creates
// one if there is none; otherwise PATCHes title, body and base only where
// they differ (no write when equal). Missing labels are added
// (POST /issues/{n}/labels), labels people added are kept.
//
// AutoMerge: GitHub auto-merge is enabled with the GraphQL mutation
// enablePullRequestAutoMerge (once: not again when the PR already has it).
// When GitHub refuses because auto-merge is not allowed on the repository,
// or because the PR can already be merged (GitHub will not arm auto-merge
// on a PR in "clean"/"unstable"/"has_hooks" status, nor when the base branch
// has no protection rules), the PR is merged directly
// (PUT /pulls/{n}/merge, guarded by the head SHA) if GitHub says it is
// mergeable now; if it is not (checks pending, behind, conflicts), nothing is
// merged and no error is returned: the next UpsertPR — offshoot's next sync
// or reconcile — tries again. The returned PR says which happened
// (AutoMerge, Merged).
//
// created: a new PR was opened. changed: anything was written (created
// implies changed).
func (c *Client) UpsertPR(ctx context.Context, spec PRSpec) (pr *PR, created bool, changed bool, err error) {
	op := fmt.Sprintf("create pull request %s %s", spec.Repo, spec.Head)
	if err := spec.Repo.validate(); err != nil {
		return nil, false, false, &APIError{Op: op, Message: err.Error()}
	}
	if spec.Head == "" || spec.Base == "" || strings.TrimSpace(spec.Title) == "" {
		return nil, false, false, &APIError{Op: op, Message: "head, base and title are required"}
	}
	if n := utf8.RuneCountInString(spec.Body); n > MaxBodyLength {
		return nil, false, false, &APIError{Op: op, Message: fmt.Sprintf("body has %d characters, more than GitHub's %d (shorten it)", n, MaxBodyLength)}
	}
	method, err := mergeMethod(spec.MergeMethod)
	if err != nil {
		return nil, false, false, &APIError{Op: op, Message: err.Error()}
	}

	cur, err := c.findPR(ctx, spec.Repo, spec.Head, "open")
	if err != nil {
		return nil, false, false, err
	}
	if cur == nil {
		if cur, err = c.createPR(ctx, spec); err != nil {
			return nil, false, false, err
		}
		created, changed = true, true
	} else {
		upd := &gh.PullRequest{}
		dirty := false
		if cur.GetTitle() != spec.Title {
			upd.Title, dirty = gh.String(spec.Title), true
		}
		if normalizeBody(cur.GetBody()) != normalizeBody(spec.Body) {
			upd.Body, dirty = gh.String(spec.Body), true
		}
		if cur.GetBase().GetRef() != spec.Base {
			upd.Base, dirty = &gh.PullRequestBranch{Ref: gh.String(spec.Base)}, true
		}
		if dirty {
			uop := fmt.Sprintf("update pull request %s#%d (%s)", spec.Repo, cur.GetNumber(), spec.Head)
			p, _, err := c.gh.PullRequests.Edit(ctx, spec.Repo.Owner, spec.Repo.Name, cur.GetNumber(), upd)
			if err != nil {
				return nil, false, false, wrapErr(uop, err, c.secrets)
			}
			cur, changed = p, true
		}
	}

	if missing := missingLabels(cur.Labels, spec.Labels); len(missing) > 0 {
		lop := fmt.Sprintf("add labels %s to %s#%d", strings.Join(missing, ", "), spec.Repo, cur.GetNumber())
		labels, _, err := c.gh.Issues.AddLabelsToIssue(ctx, spec.Repo.Owner, spec.Repo.Name, cur.GetNumber(), missing)
		if err != nil {
			return toPR(cur), created, changed, wrapErr(lop, err, c.secrets)
		}
		cur.Labels, changed = labels, true
	}

	pr = toPR(cur)
	if spec.AutoMerge && pr.State == "open" && !pr.AutoMerge {
		enabled, merged, err := c.autoMerge(ctx, spec.Repo, pr, method)
		if err != nil {
			return pr, created, changed, err
		}
		if enabled {
			pr.AutoMerge, changed = true, true
		}
		if merged {
			pr.Merged, pr.State, changed = true, "closed", true
		}
	}
	return pr, created, changed, nil
}

func (c *Client) createPR(ctx context.Context, spec PRSpec) (*gh.PullRequest, error) {
	op := fmt.Sprintf("create pull request %s %s", spec.Repo, spec.Head)
	var pr *gh.PullRequest
	err := c.ambiguousWrite(ctx, op, func(ctx context.Context) error {
		p, _, err := c.gh.PullRequests.Create(ctx, spec.Repo.Owner, spec.Repo.Name, &gh.NewPullRequest{
			Title: gh.String(spec.Title), Head: gh.String(spec.Head), Base: gh.String(spec.Base), Body: gh.String(spec.Body),
		})
		pr = p
		return err
	}, func(ctx context.Context) (bool, error) {
		p, err := c.findPR(ctx, spec.Repo, spec.Head, "open")
		pr = p
		return p != nil, err
	})
	if err != nil && StatusCode(err) == http.StatusUnprocessableEntity && strings.Contains(strings.ToLower(err.Error()), "already exists") {
		// Another writer opened it in between: adopt theirs.
		if p, ferr := c.findPR(ctx, spec.Repo, spec.Head, "open"); ferr == nil && p != nil {
			return c.createdElsewhere(ctx, spec, p)
		}
	}
	return pr, err
}

// createdElsewhere brings a PR another writer just opened to spec's title and body.
func (c *Client) createdElsewhere(ctx context.Context, spec PRSpec, p *gh.PullRequest) (*gh.PullRequest, error) {
	if p.GetTitle() == spec.Title && normalizeBody(p.GetBody()) == normalizeBody(spec.Body) {
		return p, nil
	}
	uop := fmt.Sprintf("update pull request %s#%d (%s)", spec.Repo, p.GetNumber(), spec.Head)
	q, _, err := c.gh.PullRequests.Edit(ctx, spec.Repo.Owner, spec.Repo.Name, p.GetNumber(), &gh.PullRequest{Title: gh.String(spec.Title), Body: gh.String(spec.Body)})
	return q, wrapErr(uop, err, c.secrets)
}

func mergeMethod(m string) (string, error) {
	switch strings.ToLower(m) {
	case "", "merge":
		return "merge", nil
	case "squash", "rebase":
		return strings.ToLower(m), nil
	}
	return "", fmt.Errorf("merge method %q: want merge, squash or rebase", m)
}

// normalizeBody: GitHub may hand back CRLF line endings (bodies edited in
// the web UI); they must not count as a difference, or every run would write.
func normalizeBody(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func missingLabels(have []*gh.Label, want []string) []string {
	seen := map[string]bool{}
	for _, l := range have {
		seen[strings.ToLower(l.GetName())] = true // GitHub label names are case-insensitive
	}
	var out []string
	for _, w := range want {
		w = strings.TrimSpace(w)
		if w == "" || seen[strings.ToLower(w)] {
			continue
		}
		seen[strings.ToLower(w)] = true
		out = append(out, w)
	}
	return out
}

const enableAutoMergeMutation = `mutation($pullRequestId: ID!, $mergeMethod: PullRequestMergeMethod!) {
  enablePullRequestAutoMerge(input: {pullRequestId: $pullRequestId, mergeMethod: $mergeMethod}) {
    pullRequest { number autoMergeRequest { enabledAt mergeMethod } }
  }
}`

type graphQLError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// errAutoMergeUnavailable: GitHub will not arm auto-merge on this PR.
var errAutoMergeUnavailable = errors.New("auto-merge unavailable")

func (c *Client) autoMerge(ctx context.Context, repo Repo, pr *PR, method string) (enabled, merged bool, err error) {
	err = c.enableAutoMerge(ctx, repo, pr, method)
	if err == nil {
		return true, false, nil
	}
	if !errors.Is(err, errAutoMergeUnavailable) {
		return false, false, err
	}
	c.logger.Info("github: auto-merge unavailable; merging directly if mergeable", "repo", repo.String(), "pr", pr.Number, "reason", c.secrets.scrub(err.Error()))
	merged, err = c.mergeIfMergeable(ctx, repo, pr.Number, pr.HeadSHA, method)
	return false, merged, err
}

func (c *Client) enableAutoMerge(ctx context.Context, repo Repo, pr *PR, method string) error {
	op := fmt.Sprintf("enable auto-merge on %s#%d", repo, pr.Number)
	if pr.NodeID == "" {
		return &APIError{Op: op, Message: "the pull request has no node_id"}
	}
	req, err := c.gh.NewRequest(http.MethodPost, c.graphqlURL, map[string]any{
		"query":     enableAutoMergeMutation,
		"variables": map[string]any{"pullRequestId": pr.NodeID, "mergeMethod": strings.ToUpper(method)},
	})
	if err != nil {
		return wrapErr(op, err, c.secrets)
	}
	var out struct {
		Data struct {
			Enable *struct {
				PullRequest struct {
					AutoMergeRequest *struct {
						EnabledAt string `json:"enabledAt"`
					} `json:"autoMergeRequest"`
				} `json:"pullRequest"`
			} `json:"enablePullRequestAutoMerge"`
		} `json:"data"`
		Errors []graphQLError `json:"errors"`
	}
	if _, err := c.gh.Do(ctx, req, &out); err != nil {
		return wrapErr(op, err, c.secrets)
	}
	if len(out.Errors) > 0 {
		var msgs []string
		unavailable := false
		for _, e := range out.Errors {
			msgs = append(msgs, e.Message)
			unavailable = unavailable || autoMergeUnavailable(e.Message)
		}
		ae := &APIError{Op: op, Message: c.secrets.scrub(strings.Join(msgs, "; "))}
		if unavailable {
			ae.Err = errAutoMergeUnavailable
		}
		return ae
	}
	if out.Data.Enable == nil || out.Data.Enable.PullRequest.AutoMergeRequest == nil {
		return &APIError{Op: op, Message: "GitHub answered without an autoMergeRequest"}
	}
	return nil
}

// autoMergeUnavailable recognises GitHub's refusals that mean "merge it
// yourself": the repository does not allow auto-merge, the base branch has
// no protection, or the PR is already mergeable (GitHub only arms auto-merge
// on a PR that has to wait for something).
func autoMergeUnavailable(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{
		"auto merge is not allowed", "auto-merge is not allowed", "auto merge is not enabled",
		"protected branch rules not configured",
		"is in clean status", "is in unstable status", "is in has_hooks status",
	} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// mergeIfMergeable merges pr now if GitHub says it can be merged; false (and
// no error) when it cannot be yet.
func (c *Client) mergeIfMergeable(ctx context.Context, repo Repo, number int, headSHA, method string) (bool, error) {
	gop := fmt.Sprintf("get pull request %s#%d", repo, number)
	var p *gh.PullRequest
	// mergeable is computed asynchronously: null until GitHub has done it.
	for attempt := 1; ; attempt++ {
		var err error
		p, _, err = c.gh.PullRequests.Get(ctx, repo.Owner, repo.Name, number)
		if err != nil {
			return false, wrapErr(gop, err, c.secrets)
		}
		if p.GetMerged() {
			return true, nil
		}
		if p.Mergeable != nil || attempt >= 3 {
			break
		}
		if err := c.sleepCtx(ctx, backoff(attempt)); err != nil {
			return false, wrapErr(gop, err, c.secrets)
		}
	}
	state := p.GetMergeableState()
	if p.GetState() != "open" || !p.GetMergeable() || (state != "clean" && state != "unstable" && state != "has_hooks") {
		c.logger.Info("github: pull request not mergeable yet; the next run tries again", "repo", repo.String(), "pr", number, "mergeable_state", state)
		return false, nil
	}
	if headSHA == "" {
		headSHA = p.GetHead().GetSHA()
	}
	mop := fmt.Sprintf("merge pull request %s#%d", repo, number)
	merged := false
	err := c.ambiguousWrite(ctx, mop, func(ctx context.Context) error {
		res, _, err := c.gh.PullRequests.Merge(ctx, repo.Owner, repo.Name, number, "", &gh.PullRequestOptions{SHA: headSHA, MergeMethod: method})
		merged = res.GetMerged()
		return err
	}, func(ctx context.Context) (bool, error) {
		q, _, err := c.gh.PullRequests.Get(ctx, repo.Owner, repo.Name, number)
		if err != nil {
			return false, wrapErr(gop, err, c.secrets)
		}
		merged = q.GetMerged()
		return merged, nil
	})
	switch code := StatusCode(err); {
	case err == nil:
		return merged, nil
	case code == http.StatusMethodNotAllowed || code == http.StatusConflict:
		// 405 not mergeable (e.g. required reviews), 409 head moved: not now.
		c.logger.Info("github: merge refused; the next run tries again", "repo", repo.String(), "pr", number, "reason", err.Error())
		return false, nil
	default:
		return false, err
	}
}

// ClosePR closes a pull request without merging it (no write when it is
// already closed).
func (c *Client) ClosePR(ctx context.Context, repo Repo, number int) error {
	op := fmt.Sprintf("close pull request %s#%d", repo, number)
	if err := repo.validate(); err != nil || number <= 0 {
		return &APIError{Op: op, Message: "need a valid repository and a positive number"}
	}
	p, _, err := c.gh.PullRequests.Get(ctx, repo.Owner, repo.Name, number)
	if err != nil {
		return wrapErr(op, err, c.secrets)
	}
	if p.GetState() == "closed" {
		return nil
	}
	_, _, err = c.gh.PullRequests.Edit(ctx, repo.Owner, repo.Name, number, &gh.PullRequest{State: gh.String("closed")})
	return wrapErr(op, err, c.secrets)
}

// DeleteBranch deletes refs/heads/branch (DELETE /repos/{o}/{r}/git/refs/heads/{branch});
// a branch that is already gone (422 "Reference does not exist", 404) is success.
func (c *Client) DeleteBranch(ctx context.Context, repo Repo, branch string) error {
	op := fmt.Sprintf("delete branch %s %s", repo, branch)
	if err := repo.validate(); err != nil || branch == "" {
		return &APIError{Op: op, Message: "need a valid repository and a branch"}
	}
	_, err := c.gh.Git.DeleteRef(ctx, repo.Owner, repo.Name, "heads/"+branch)
	if code := StatusCode(wrapErr(op, err, c.secrets)); code == http.StatusUnprocessableEntity || code == http.StatusNotFound {
		return nil
	}
	return wrapErr(op, err, c.secrets)
}
