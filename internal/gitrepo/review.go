package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"io/fs"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Review branches: in pull-request mode a change is not pushed to the
// environments repo's branch but to a branch of its own (one per
// environment), as a single commit on top of the branch head, which a pull
// request then proposes. Pushing the same content again is a no-op, so the
// pull request is never churned.

func (r *Repo) reviewTracking(branch string) plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName("origin", branch)
}

// reviewHead is a review branch's head as the last fetch saw it (every
// fetch brings the review branches along), or nil when it has none.
func (r *Repo) reviewHead(branch string) (*object.Commit, error) {
	ref, err := r.repo.Reference(r.reviewTracking(branch), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return r.repo.CommitObject(ref.Hash())
}

// ensureFetched fetches once if this Repo has not fetched yet, so that the
// review branches are known.
func (r *Repo) ensureFetched(ctx context.Context) error {
	if r.known {
		return nil
	}
	if err := r.fetch(ctx); err != nil {
		return err
	}
	r.known = true
	return nil
}

// SnapshotBranch returns the files at the head of a review branch as the
// last Snapshot fetched it, or ok=false when it does not exist.
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
	if err := r.ensureFetched(ctx); err != nil {
		return nil, "", false, err
	}
	c, err := r.reviewHead(branch)
	if err != nil || c == nil {
		return nil, "", false, err
	}
	t, err := c.Tree()
	if err != nil {
		return nil, "", false, err
	}
	return newTreeFS(r.repo.Storer, t), c.Hash.String(), true, nil
}

// Propose builds the change as one commit on top of the branch head (as
// the last Snapshot fetched it) and force-pushes it to the review branch —
// unless the review branch already holds the same tree, in which case
// nothing is pushed.
func (r *Repo) Propose(ctx context.Context, branch string, fn ChangeFunc) (engine.Proposal, error) {
	if r.local {
		return engine.Proposal{}, errors.New("pull-request mode needs a remote environments repo, not a local working copy")
	}
	if branch == r.opts.Branch {
		return engine.Proposal{}, fmt.Errorf("review branch %q is the environments repo's own branch", branch)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := lockCtx(ctx, r.lock); err != nil {
		return engine.Proposal{}, err
	}
	defer r.lock.Unlock()
	if err := r.ensureFetched(ctx); err != nil {
		return engine.Proposal{}, err
	}
	head, err := r.cachedHead()
	if err != nil {
		return engine.Proposal{}, err
	}
	if head == nil {
		return engine.Proposal{}, fmt.Errorf("%w: %s has no branch %q (run offshoot init)", ErrNoBranch, redact(r.opts.Location), r.opts.Branch)
	}
	base, err := head.Tree()
	if err != nil {
		return engine.Proposal{}, err
	}
	change, err := fn(newTreeFS(r.repo.Storer, base), head.Hash.String())
	if err != nil {
		return engine.Proposal{}, err
	}
	res := engine.Proposal{}
	if change.Empty() {
		return res, nil
	}
	trie, err := buildTrie(change)
	if err != nil {
		return engine.Proposal{}, err
	}
	tree, err := writeTree(r.repo.Storer, base.Hash, trie)
	if err != nil {
		return engine.Proposal{}, err
	}
	if tree.IsZero() {
		return engine.Proposal{}, errors.New("refusing to propose an empty tree")
	}
	cur, err := r.reviewHead(branch)
	if err != nil {
		return engine.Proposal{}, err
	}
	if cur != nil {
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
		return engine.Proposal{}, err
	}
	h, err := r.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return engine.Proposal{}, err
	}
	local := plumbing.NewBranchReferenceName(branch)
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(local, h)); err != nil {
		return engine.Proposal{}, err
	}
	err = r.repo.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", local, local))},
		Auth:       r.opts.Auth,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return engine.Proposal{}, fmt.Errorf("push %s to %s: %w", branch, redact(r.remote), classify(err))
	}
	_ = r.repo.Storer.SetReference(plumbing.NewHashReference(r.reviewTracking(branch), h))
	return engine.Proposal{Commit: h.String(), Changed: true}, nil
}

// DeleteBranch removes a review branch from the remote; a branch that is
// already gone is not an error.
func (r *Repo) DeleteBranch(ctx context.Context, branch string) error {
	if r.local || branch == r.opts.Branch {
		return fmt.Errorf("refusing to delete branch %q", branch)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.ensureFetched(ctx); err != nil {
		return err
	}
	if cur, err := r.reviewHead(branch); err != nil || cur == nil {
		return err
	}
	err := r.repo.PushContext(ctx, &git.PushOptions{
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
