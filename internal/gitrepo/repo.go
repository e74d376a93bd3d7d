// Package gitrepo is offshoot's adapter to the environments repository,
// built on go-git. Commits are made straight in the object database (only
// the touched trees are rewritten; no checkout, no status) on top of the
// remote branch head, and pushed with a lease on that head, so a concurrent
// writer makes the push fail as a conflict instead of being overwritten;
// conflicts are retried from a fresh fetch, anything else is reported.
package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/gofrs/flock"

	"github.com/offshoot-dev/offshoot/internal/gitcache"
)

// Typed errors callers can act on.
var (
	// ErrConflict: the remote branch moved while we worked (non-fast-forward).
	ErrConflict = errors.New("the environments repo changed while offshoot was writing (non-fast-forward)")
	// ErrNoBranch: the repository or its branch does not exist yet.
	ErrNoBranch = errors.New("branch not found in the environments repo")
	// ErrDirty: a local working copy has uncommitted changes.
	ErrDirty = errors.New("the environments repo working copy has uncommitted changes")
)

// Options say where the environments repo is and who commits.
type Options struct {
	// Location is a git URL (http(s)://, ssh://, git@host:path, file://) or a
	// local path. A local path to a repository with a working tree is
	// committed to in place; anything else is a remote that offshoot keeps a
	// cached clone of and pushes to.
	Location string
	// Branch of the environments repo; empty means main.
	Branch string
	// CacheDir holds cached clones of remotes.
	CacheDir string
	// AuthorName and AuthorEmail sign the commits.
	AuthorName, AuthorEmail string
	// Auth for http(s) remotes; nil means anonymous or credentials in the URL.
	Auth transport.AuthMethod
	// Attempts bounds conflict retries (default 10). An attempt only fails
	// when another writer's commit landed meanwhile, so N writers making one
	// commit each all succeed when Attempts >= N.
	Attempts int
	// Now is the clock for commit times (default time.Now).
	Now func() time.Time
}

// Result of an Update.
type Result struct {
	Commit   string // the new head (or the unchanged one)
	Changed  bool   // false: the change was already there, nothing committed
	Attempts int
}

// Repo is an opened environments repo.
type Repo struct {
	mu     sync.Mutex // the file lock does not exclude goroutines sharing r.lock
	opts   Options
	repo   *git.Repository
	local  bool // a working copy committed to in place
	lock   *flock.Flock
	remote string
}

// IsLocalWorkingCopy reports whether location is a directory holding a
// non-bare git repository.
func IsLocalWorkingCopy(location string) bool {
	if looksLikeURL(location) {
		return false
	}
	st, err := os.Stat(filepath.Join(location, ".git"))
	return err == nil && st.IsDir()
}

func looksLikeURL(s string) bool { return gitcache.LooksLikeURL(s) }

// Open opens (cloning into the cache if needed) the environments repo.
func Open(ctx context.Context, o Options) (*Repo, error) {
	if o.Location == "" {
		return nil, errors.New("no environments repo given: use --env-repo or OFFSHOOT_ENV_REPO")
	}
	if o.Branch == "" {
		o.Branch = "main"
	}
	if o.Attempts <= 0 {
		o.Attempts = 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AuthorName == "" {
		o.AuthorName = "offshoot"
	}
	if o.AuthorEmail == "" {
		o.AuthorEmail = "offshoot@localhost"
	}
	if IsLocalWorkingCopy(o.Location) {
		r, err := git.PlainOpen(o.Location)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", o.Location, err)
		}
		lk := flock.New(filepath.Join(o.Location, ".git", "offshoot.lock"))
		return &Repo{opts: o, repo: r, local: true, lock: lk}, nil
	}
	remote, err := gitcache.Remote(o.Location, "environments repo")
	if err != nil {
		return nil, err
	}
	o.CacheDir = gitcache.DefaultRoot(o.CacheDir)
	c, err := gitcache.Open(ctx, remote, o.CacheDir, "repos")
	if err != nil {
		return nil, err
	}
	return &Repo{opts: o, repo: c.Repo, lock: c.Lock, remote: remote}, nil
}

func lockCtx(ctx context.Context, lk *flock.Flock) error { return gitcache.LockCtx(ctx, lk) }

// Location is where the repo lives, as given.
func (r *Repo) Location() string { return r.opts.Location }

// Branch is the environments repo branch offshoot writes.
func (r *Repo) Branch() string { return r.opts.Branch }

func (r *Repo) trackingRef() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName("origin", r.opts.Branch)
}

// head returns the current head commit (nil when the branch does not exist).
func (r *Repo) head(ctx context.Context) (*object.Commit, error) {
	var name plumbing.ReferenceName
	if r.local {
		name = plumbing.NewBranchReferenceName(r.opts.Branch)
		ref, err := r.repo.Head()
		if err == nil && ref.Name().IsBranch() {
			name = ref.Name()
			r.opts.Branch = ref.Name().Short()
		}
	} else {
		if err := r.fetch(ctx); err != nil {
			return nil, err
		}
		name = r.trackingRef()
	}
	ref, err := r.repo.Reference(name, true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return r.repo.CommitObject(ref.Hash())
}

func (r *Repo) fetch(ctx context.Context) error {
	spec := config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", r.opts.Branch, r.trackingRef()))
	err := r.repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Auth: r.opts.Auth, Force: true})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case errors.Is(err, transport.ErrEmptyRemoteRepository), isNoMatchingRef(err):
		// The branch does not exist (yet): forget any stale tracking ref.
		_ = r.repo.Storer.RemoveReference(r.trackingRef())
		return nil
	default:
		return fmt.Errorf("fetch %s from %s: %w", r.opts.Branch, redact(r.remote), classify(err))
	}
}

func isNoMatchingRef(err error) bool {
	var nm git.NoMatchingRefSpecError
	return errors.As(err, &nm)
}

// Snapshot returns the files at the head of the branch (fetched fresh for
// a remote). It fails with ErrNoBranch when the branch does not exist.
func (r *Repo) Snapshot(ctx context.Context) (fs.FS, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := lockCtx(ctx, r.lock); err != nil {
		return nil, "", err
	}
	defer r.lock.Unlock()
	c, err := r.head(ctx)
	if err != nil {
		return nil, "", err
	}
	if c == nil {
		return nil, "", fmt.Errorf("%w: %s has no branch %q (run offshoot init)", ErrNoBranch, redact(r.opts.Location), r.opts.Branch)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, "", err
	}
	return treeFS{s: r.repo.Storer, root: t}, c.Hash.String(), nil
}

// ChangeFunc computes the change to make on top of the current files. It
// may be called more than once (after a conflict); it must not have side
// effects. A nil or empty change means nothing to do.
type ChangeFunc func(files fs.FS) (*Change, error)

// UpdateOptions tune one Update.
type UpdateOptions struct {
	// AllowEmptyRepo lets the change create the branch (offshoot init).
	AllowEmptyRepo bool
}

// Update computes a change on the branch head, commits it and pushes it.
// The same change twice makes no second commit (Changed is false).
func (r *Repo) Update(ctx context.Context, fn ChangeFunc, uo UpdateOptions) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := lockCtx(ctx, r.lock); err != nil {
		return Result{}, err
	}
	defer r.lock.Unlock()
	for attempt := 1; ; attempt++ {
		res, err := r.updateOnce(ctx, fn, uo)
		res.Attempts = attempt
		if !errors.Is(err, ErrConflict) {
			return res, err
		}
		if attempt >= r.opts.Attempts {
			return Result{Attempts: attempt}, fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		// Back off exponentially (50ms, 100ms, ... capped at 1s), randomised
		// over [d/2, d) so writers that collided do not retry in lockstep.
		d := time.Second
		if attempt <= 5 {
			d = 50 * time.Millisecond << (attempt - 1)
		}
		d = d/2 + rand.N(d/2)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(d):
		}
	}
}

func (r *Repo) updateOnce(ctx context.Context, fn ChangeFunc, uo UpdateOptions) (Result, error) {
	if r.local {
		if err := r.checkClean(); err != nil {
			return Result{}, err
		}
	}
	head, err := r.head(ctx)
	if err != nil {
		return Result{}, err
	}
	var baseTree plumbing.Hash
	files := treeFS{s: r.repo.Storer}
	if head == nil {
		if !uo.AllowEmptyRepo {
			return Result{}, fmt.Errorf("%w: %s has no branch %q (run offshoot init)", ErrNoBranch, redact(r.opts.Location), r.opts.Branch)
		}
	} else {
		t, err := head.Tree()
		if err != nil {
			return Result{}, err
		}
		baseTree, files.root = t.Hash, t
	}
	change, err := fn(files)
	if err != nil {
		return Result{}, err
	}
	unchanged := Result{}
	if head != nil {
		unchanged.Commit = head.Hash.String()
	}
	if change.Empty() {
		return unchanged, nil
	}
	trie, err := buildTrie(change)
	if err != nil {
		return Result{}, err
	}
	newTree, err := writeTree(r.repo.Storer, baseTree, trie)
	if err != nil {
		return Result{}, fmt.Errorf("write tree: %w", err)
	}
	if newTree == baseTree {
		return unchanged, nil
	}
	if newTree.IsZero() {
		return Result{}, errors.New("refusing to commit an empty tree")
	}
	now := r.opts.Now()
	sig := object.Signature{Name: r.opts.AuthorName, Email: r.opts.AuthorEmail, When: now}
	commit := &object.Commit{Author: sig, Committer: sig, Message: change.Message, TreeHash: newTree}
	if head != nil {
		commit.ParentHashes = []plumbing.Hash{head.Hash}
	}
	obj := r.repo.Storer.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return Result{}, err
	}
	h, err := r.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return Result{}, err
	}
	branchRef := plumbing.NewBranchReferenceName(r.opts.Branch)
	if r.local {
		if err := r.advanceLocal(branchRef, head, h); err != nil {
			return Result{}, err
		}
		return Result{Commit: h.String(), Changed: true}, nil
	}
	if err := r.push(ctx, branchRef, head, h); err != nil {
		return Result{}, err
	}
	return Result{Commit: h.String(), Changed: true}, nil
}

func (r *Repo) push(ctx context.Context, branchRef plumbing.ReferenceName, head *object.Commit, h plumbing.Hash) error {
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(branchRef, h)); err != nil {
		return err
	}
	po := &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("%s:%s", branchRef, branchRef))},
		Auth:       r.opts.Auth,
	}
	if head != nil {
		// Lease on the head we built on: the server refuses the update if
		// the branch moved, whatever go-git saw when it listed the refs.
		po.ForceWithLease = &git.ForceWithLease{RefName: branchRef, Hash: head.Hash}
		po.RefSpecs = []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", branchRef, branchRef))}
	}
	err := r.repo.PushContext(ctx, po)
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("push to %s: %w", redact(r.remote), classify(err))
	}
	return r.repo.Storer.SetReference(plumbing.NewHashReference(r.trackingRef(), h))
}

func (r *Repo) checkClean() error {
	w, err := r.repo.Worktree()
	if err != nil {
		return err
	}
	st, err := w.Status()
	if err != nil {
		return err
	}
	if !st.IsClean() {
		var files []string
		for f := range st {
			files = append(files, f)
			if len(files) == 5 {
				break
			}
		}
		return fmt.Errorf("%w in %s (%s): commit or stash them first", ErrDirty, r.opts.Location, strings.Join(files, ", "))
	}
	return nil
}

func (r *Repo) advanceLocal(branchRef plumbing.ReferenceName, head *object.Commit, h plumbing.Hash) error {
	var old *plumbing.Reference
	if head != nil {
		old = plumbing.NewHashReference(branchRef, head.Hash)
	}
	// Compare-and-swap, so a concurrent local commit is a conflict, not lost.
	if err := r.repo.Storer.CheckAndSetReference(plumbing.NewHashReference(branchRef, h), old); err != nil {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	if head == nil {
		if err := r.repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, branchRef)); err != nil {
			return err
		}
	}
	w, err := r.repo.Worktree()
	if err != nil {
		return err
	}
	return w.Reset(&git.ResetOptions{Commit: h, Mode: git.HardReset})
}

// classify maps transport errors to the typed errors above.
func classify(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range []string{"non-fast-forward", "stale info", "fetch first", "cannot lock ref", "failed to update ref", "failed to lock"} {
		if strings.Contains(msg, s) {
			return fmt.Errorf("%w: %v", ErrConflict, err)
		}
	}
	if errors.Is(err, transport.ErrRepositoryNotFound) {
		return fmt.Errorf("%w: %v", ErrNoBranch, err)
	}
	return err
}

// redact hides credentials in a URL.
func redact(u string) string { return gitcache.Redact(u) }

// BasicAuth returns http basic auth for a token or password, or nil.
func BasicAuth(user, password string) transport.AuthMethod {
	if password == "" {
		return nil
	}
	if user == "" {
		user = "x-access-token"
	}
	return &http.BasicAuth{Username: user, Password: password}
}

// PrepareLocal makes a local path ready to be an environments repo: a path
// that does not exist or is an empty directory becomes a new repository
// with a working tree whose branch is main. URLs and existing repositories
// are left alone; a non-empty directory that is not a repository is an error.
func PrepareLocal(location string) error {
	if looksLikeURL(location) {
		return nil
	}
	entries, err := os.ReadDir(location)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case len(entries) == 0:
	default:
		if IsLocalWorkingCopy(location) {
			return nil
		}
		if _, err := git.PlainOpen(location); err == nil {
			return nil // a bare repository
		}
		return fmt.Errorf("%s is not empty and not a git repository", location)
	}
	if err := os.MkdirAll(location, 0o755); err != nil {
		return err
	}
	_, err = git.PlainInitWithOptions(location, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	return err
}
