package engine

import (
	"context"
	"io/fs"
)

// The engine's ports: what it needs of the world, in its own types. The
// adapters (internal/gitrepo, internal/apprepo, internal/github,
// internal/argocd) implement them and assert it; engine tests use
// in-memory ones.

// Change is what one commit does to the environments repo's tree.
type Change struct {
	// Message is the commit message.
	Message string
	// Dirs replaces whole directories: the directory holds exactly the given
	// files (relative paths) afterwards; a nil map removes the directory.
	Dirs map[string]map[string][]byte
	// Files writes single files, leaving their neighbours alone.
	Files map[string][]byte
}

// Empty reports whether the change touches nothing.
func (c *Change) Empty() bool { return c == nil || (len(c.Dirs) == 0 && len(c.Files) == 0) }

// ChangeFunc computes the change to make on top of the branch head's files
// (head is that commit, "" for a branch that does not exist yet). It may
// be called more than once (after a conflict); it must not have side
// effects. A nil or empty change means nothing to do.
type ChangeFunc func(files fs.FS, head string) (*Change, error)

// UpdateOptions tune one Update.
type UpdateOptions struct {
	// AllowEmptyRepo lets the change create the branch (offshoot init).
	AllowEmptyRepo bool
}

// Update is what Repo.Update did.
type Update struct {
	Commit   string // the new head (or the unchanged one)
	Changed  bool   // false: the change was already there, nothing committed
	Previous string // with Changed, the head the commit replaced ("" for a new branch)
	Attempts int
}

// Repo is the environments repo.
type Repo interface {
	// Snapshot returns the files at the head of the branch, fetched fresh.
	Snapshot(ctx context.Context) (files fs.FS, head string, err error)
	// Update computes a change on the branch head, commits it and pushes
	// it; when the branch moved meanwhile the change is computed again on
	// the new head. An Update right after a Snapshot builds on that
	// snapshot without fetching again.
	Update(ctx context.Context, fn ChangeFunc, o UpdateOptions) (Update, error)
}

// ReviewRepo is what pull-request mode needs of the environments repo: a
// remote with branches other than the one offshoot writes.
type ReviewRepo interface {
	// Branch is the branch changes are proposed to.
	Branch() string
	// SnapshotBranch returns another branch's files; ok is false when the
	// branch does not exist.
	SnapshotBranch(ctx context.Context, branch string) (files fs.FS, head string, ok bool, err error)
	// Propose commits the change on top of Branch()'s head to branch (one
	// commit, force-updated); Commit is "" when the change is already on
	// Branch()'s head, nothing left to review.
	Propose(ctx context.Context, branch string, fn ChangeFunc) (Proposal, error)
	DeleteBranch(ctx context.Context, branch string) error
}

// Proposal is what ReviewRepo.Propose did.
type Proposal struct {
	Commit  string // the review branch's head ("" when there is nothing to review)
	Changed bool   // the review branch got a new commit
}

// PullRequest is a pull request in the environments repo, as the engine
// needs to know it.
type PullRequest struct {
	Number int
	URL    string
}

// PRRequest is the pull request to open or update for a review branch.
type PRRequest struct {
	Head, Base, Title, Body string
	Labels                  []string
	AutoMerge               bool
}

// Reviewer is the code host's pull requests of the environments repo.
type Reviewer interface {
	// OpenPR returns the open pull request whose head is branch, or nil.
	OpenPR(ctx context.Context, head string) (*PullRequest, error)
	// UpsertPR opens the pull request or updates the open one of the same
	// head; it writes nothing when title, body and labels are already so.
	UpsertPR(ctx context.Context, pr PRRequest) (p *PullRequest, created, changed bool, err error)
	// ClosePR closes a pull request without merging it.
	ClosePR(ctx context.Context, number int) error
}

// Reporter reports an environment back on the app repository: a commit
// status on the app commit, and one comment on the branch's pull request.
type Reporter interface {
	SetStatus(ctx context.Context, sha, context, state, description, targetURL string) error
	// UpsertBranchComment edits offshoot's comment (found by marker) on the
	// open pull request of branch, or creates it; no PR → nothing.
	UpsertBranchComment(ctx context.Context, branch, marker, body string) error
}

// Candidate is an existing environment's branch and the app commit it runs,
// offered to parent detection.
type Candidate struct{ Branch, SHA string }

// Choice is the detected parent and why it was chosen.
type Choice struct {
	Parent string
	Reason string
}

// AppRepo is the app repository.
type AppRepo interface {
	// Branches maps every branch to its head commit.
	Branches(ctx context.Context) (map[string]string, error)
	// DetectParent picks, among candidates, the parent of branch (whose
	// head is head) from the history; root breaks ties.
	DetectParent(ctx context.Context, branch, head string, candidates []Candidate, root string) (Choice, error)
}

// Pushed is one commit pushed to the environments repo, as offshoot tells
// Argo CD about it.
type Pushed struct {
	Commit   string   // the new head
	Previous string   // the head it replaced ("" when unknown)
	Apps     []string // the Applications it touched (the environments' namespaces)
	Paths    []string // the environment directories it wrote or removed (envs/<env>)
}

// Notifier tells Argo CD about a pushed commit, so that it re-reads git now
// instead of at its next poll. A failure never undoes the commit.
type Notifier interface {
	Notify(ctx context.Context, p Pushed) error
}
