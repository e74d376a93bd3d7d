package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Review branches: in pull-request mode a change is not pushed to the
// environments repo's branch but to a branch of its own (one per
// environment), as a single commit on top of the branch head, which a pull
// request then proposes. Pushing the same content again is a no-op, so the
// pull request is never churned.

// ReviewResult of a Propose.
type ReviewResult struct {
	Commit  string // head of the review branch
	Base    string // the commit it is built on
	Changed bool   // false: the review branch already held exactly this
}

func (r *Repo) reviewTracking(branch string) plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName("origin", branch)
}

// fetchBranch fetches one branch into its tracking ref; found is false
// when the remote has no such branch.
func (r *Repo) fetchBranch(ctx context.Context, branch string) (found bool, err error) {
	spec := config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", branch, r.reviewTracking(branch)))
	err = r.repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Auth: r.opts.Auth, Force: true})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return true, nil
	case errors.Is(err, transport.ErrEmptyRemoteRepository), isNoMatchingRef(err):
		_ = r.repo.Storer.RemoveReference(r.reviewTracking(branch))
		return false, nil
	}
	return false, fmt.Errorf("fetch %s from %s: %w", branch, redact(r.remote), classify(err))
}

// SnapshotBranch returns the files at the head of another branch of the
// environments repo (a review branch), or ok=false when it does not exist.
func (r *Repo) SnapshotBranch(ctx context.Context, branch string) (files fs.FS, head string, ok bool, err error) {
	if r.local {
		return nil, "", false, errors.New("pull-request mode needs a remote environments repo, not a local working copy")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := lockCtx(ctx, r.lock); err != nil {
		return nil, "", false, err
	}
	defer r.lock.Unlock()
	found, err := r.fetchBranch(ctx, branch)
	if err != nil || !found {
		return nil, "", false, err
	}
	ref, err := r.repo.Reference(r.reviewTracking(branch), true)
	if err != nil {
		return nil, "", false, err
	}
	c, err := r.repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, "", false, err
	}
	t, err := c.Tree()
	if err != nil {
		return nil, "", false, err
	}
	return newTreeFS(r.repo.Storer, t), c.Hash.String(), true, nil
}

// Propose builds the change as one commit on top of the branch head and
// force-pushes it to the review branch — unless the review branch already
// holds the same tree, in which case nothing is pushed.
func (r *Repo) Propose(ctx context.Context, branch string, fn ChangeFunc) (ReviewResult, error) {
	if r.local {
		return ReviewResult{}, errors.New("pull-request mode needs a remote environments repo, not a local working copy")
	}
	if branch == r.opts.Branch {
		return ReviewResult{}, fmt.Errorf("review branch %q is the environments repo's own branch", branch)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := lockCtx(ctx, r.lock); err != nil {
		return ReviewResult{}, err
	}
	defer r.lock.Unlock()
	head, err := r.head(ctx)
	if err != nil {
		return ReviewResult{}, err
	}
	if head == nil {
		return ReviewResult{}, fmt.Errorf("%w: %s has no branch %q (run offshoot init)", ErrNoBranch, redact(r.opts.Location), r.opts.Branch)
	}
	base, err := head.Tree()
	if err != nil {
		return ReviewResult{}, err
	}
	change, err := fn(newTreeFS(r.repo.Storer, base))
	if err != nil {
		return ReviewResult{}, err
	}
	res := ReviewResult{Base: head.Hash.String()}
	if change.Empty() {
		return res, nil
	}
	trie, err := buildTrie(change)
	if err != nil {
		return ReviewResult{}, err
	}
	tree, err := writeTree(r.repo.Storer, base.Hash, trie)
	if err != nil {
		return ReviewResult{}, err
	}
	if tree.IsZero() {
		return ReviewResult{}, errors.New("refusing to propose an empty tree")
	}
	found, err := r.fetchBranch(ctx, branch)
	if err != nil {
		return ReviewResult{}, err
	}
	if found {
		ref, err := r.repo.Reference(r.reviewTracking(branch), true)
		if err != nil {
			return ReviewResult{}, err
		}
		cur, err := r.repo.CommitObject(ref.Hash())
		if err != nil {
			return ReviewResult{}, err
		}
		if cur.TreeHash == tree {
			res.Commit = cur.Hash.String()
			return res, nil // the review branch already proposes exactly this
		}
	}
	if tree == base.Hash {
		return res, nil // nothing to propose against the branch head
	}
	now := r.opts.Now()
	sig := object.Signature{Name: r.opts.AuthorName, Email: r.opts.AuthorEmail, When: now}
	commit := &object.Commit{Author: sig, Committer: sig, Message: change.Message, TreeHash: tree, ParentHashes: []plumbing.Hash{head.Hash}}
	obj := r.repo.Storer.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return ReviewResult{}, err
	}
	h, err := r.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return ReviewResult{}, err
	}
	local := plumbing.NewBranchReferenceName(branch)
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(local, h)); err != nil {
		return ReviewResult{}, err
	}
	err = r.repo.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", local, local))},
		Auth:       r.opts.Auth,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return ReviewResult{}, fmt.Errorf("push %s to %s: %w", branch, redact(r.remote), classify(err))
	}
	_ = r.repo.Storer.SetReference(plumbing.NewHashReference(r.reviewTracking(branch), h))
	return ReviewResult{Commit: h.String(), Base: head.Hash.String(), Changed: true}, nil
}

// DeleteBranch removes a review branch from the remote; a branch that is
// already gone is not an error.
func (r *Repo) DeleteBranch(ctx context.Context, branch string) error {
	if r.local || branch == r.opts.Branch {
		return fmt.Errorf("refusing to delete branch %q", branch)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	found, err := r.fetchBranch(ctx, branch)
	if err != nil || !found {
		return err
	}
	err = r.repo.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(":" + plumbing.NewBranchReferenceName(branch).String())},
		Auth:       r.opts.Auth,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("delete %s on %s: %w", branch, redact(r.remote), classify(err))
	}
	_ = r.repo.Storer.RemoveReference(r.reviewTracking(branch))
	return nil
}
