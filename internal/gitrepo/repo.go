// Package gitrepo is offshoot's adapter to the environments repository,
// built on go-git. Commits are made straight in the object database (only
// the touched trees are rewritten; no checkout, no status) on top of the
// remote branch head, and pushed with a lease on that head, so a concurrent
// writer makes the push fail as a conflict instead of being overwritten;
// conflicts are retried from a fresh fetch, anything else is reported.
package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"io"
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
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
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
	// AllowInsecureHTTP lets credentials go over plain http:// to a host
	// that is not loopback (refused otherwise).
	AllowInsecureHTTP bool
	// Attempts bounds conflict retries (default 10). An attempt only fails
	// when another writer's commit landed meanwhile, so N writers making one
	// commit each all succeed when Attempts >= N.
	Attempts int
	// Now is the clock for commit times (default time.Now).
	Now func() time.Time
}

// Result of an Update (the engine's type).
type Result = engine.Update

var (
	_ engine.Repo       = (*Repo)(nil)
	_ engine.ReviewRepo = (*Repo)(nil)
)

// Repo is an opened environments repo.
type Repo struct {
	mu     sync.Mutex // the file lock does not exclude goroutines sharing r.lock
	opts   Options
	repo   *git.Repository
	local  bool // a working copy committed to in place
	lock   *flock.Flock
	remote string
	// known: the tracking ref holds what this process last fetched or
	// pushed, so the next Update may build on it without fetching first
	// (the push's lease catches a remote that moved meanwhile).
	known bool
	// snapshotted: the last call was a Snapshot, which fetched; the next
	// Update's no-change answer needs no second fetch to be sure.
	snapshotted bool
	// trees keeps the large decoded trees (envs/) between updates.
	trees *treeCache
	// pushCaps are the receive-pack capabilities the remote advertised at
	// the last successful push: smart HTTP is stateless, so later pushes
	// POST their pack without first GETting the advertisement again.
	pushCaps *capability.List
}

// files is the read-only view of root, sharing the repo's tree cache.
func (r *Repo) files(root *object.Tree) treeFS {
	t := newTreeFS(r.repo.Storer, root)
	t.shared = r.trees
	return t
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
		return &Repo{opts: o, repo: r, local: true, lock: lk, trees: newTreeCache()}, nil
	}
	remote, err := gitcache.Remote(o.Location, "environments repo")
	if err != nil {
		return nil, err
	}
	if err := gitcache.CheckTransport(remote, o.Auth != nil, o.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("environments repo: %w", err)
	}
	o.CacheDir = gitcache.DefaultRoot(o.CacheDir)
	c, err := gitcache.Open(ctx, remote, o.CacheDir, "repos")
	if err != nil {
		return nil, err
	}
	return &Repo{opts: o, repo: c.Repo, lock: c.Lock, remote: remote, trees: newTreeCache()}, nil
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
		r.known = true
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

// cachedHead is the tracking ref's commit, without fetching.
func (r *Repo) cachedHead() (*object.Commit, error) {
	ref, err := r.repo.Reference(r.trackingRef(), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return r.repo.CommitObject(ref.Hash())
}

// moved fetches and reports whether the remote head differs from head.
func (r *Repo) moved(ctx context.Context, head *object.Commit) (bool, error) {
	cur, err := r.head(ctx)
	if err != nil {
		return false, err
	}
	switch {
	case cur == nil && head == nil:
		return false, nil
	case cur == nil || head == nil:
		return true, nil
	}
	return cur.Hash != head.Hash, nil
}

// fetch brings the branch and, in the same request, every review branch
// (engine.ReviewBranchPrefix*: pull-request mode reads them from this
// snapshot, without fetching again); review branches deleted on the remote
// are pruned.
func (r *Repo) fetch(ctx context.Context) error {
	specs := []config.RefSpec{
		config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", r.opts.Branch, r.trackingRef())),
		config.RefSpec(fmt.Sprintf("+refs/heads/%s*:refs/remotes/origin/%s*", engine.ReviewBranchPrefix, engine.ReviewBranchPrefix)),
	}
	err := r.repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: specs, Auth: r.opts.Auth, Force: true, Prune: true})
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
	r.snapshotted = !r.local
	return r.files(t), c.Hash.String(), nil
}

// ChangeFunc computes the change to make on top of the current files (the
// engine's type).
type ChangeFunc = engine.ChangeFunc

// UpdateOptions tune one Update (the engine's type).
type UpdateOptions = engine.UpdateOptions

// Update computes a change on the branch head, commits it and pushes it.
// The same change twice makes no second commit (Changed is false).
func (r *Repo) Update(ctx context.Context, fn ChangeFunc, uo UpdateOptions) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := lockCtx(ctx, r.lock); err != nil {
		return Result{}, err
	}
	defer r.lock.Unlock()
	defer func() { r.snapshotted = false }()
	for attempt := 1; ; attempt++ {
		optimistic := attempt == 1 && !r.local && r.known
		res, err := r.updateOnce(ctx, fn, uo, optimistic)
		res.Attempts = attempt
		if !errors.Is(err, ErrConflict) {
			return res, err
		}
		r.known = false
		if attempt >= r.opts.Attempts {
			return Result{Attempts: attempt}, engine.Temporary(fmt.Errorf("gave up after %d attempts: %w", attempt, err))
		}
		if optimistic {
			continue // built without fetching: fetch and retry at once
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

// updateOnce makes one attempt. optimistic builds on the tracking ref as
// this process last saw it, without a fetch: when that leads to a push, the
// lease makes a stale head a conflict; when it leads to anything else (no
// change, a refused request) the remote is fetched and, if it moved, the
// attempt is made again on the fresh head.
func (r *Repo) updateOnce(ctx context.Context, fn ChangeFunc, uo UpdateOptions, optimistic bool) (res Result, err error) {
	if r.local {
		if err := r.checkClean(); err != nil {
			return Result{}, err
		}
	}
	var head *object.Commit
	if optimistic {
		head, err = r.cachedHead()
		snapshotted := r.snapshotted
		defer func() {
			// A Snapshot fetched this head just before (the engine's
			// batch): trust it, as the plan itself did.
			if res.Changed || errors.Is(err, ErrConflict) || snapshotted {
				return
			}
			if moved, ferr := r.moved(ctx, head); ferr != nil {
				res, err = Result{}, ferr
			} else if moved {
				res, err = r.updateOnce(ctx, fn, uo, false)
			}
		}()
	} else {
		head, err = r.head(ctx)
	}
	if err != nil {
		return Result{}, err
	}
	var baseTree plumbing.Hash
	files := r.files(nil)
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
	headHash := ""
	if head != nil {
		headHash = head.Hash.String()
	}
	change, err := fn(files, headHash)
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
	stage := newStaging(r.repo.Storer)
	newTree, err := writeTreeCached(stage, baseTree, trie, r.trees)
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
	h, err := stage.SetEncodedObject(obj)
	if err != nil {
		return Result{}, err
	}
	branchRef := plumbing.NewBranchReferenceName(r.opts.Branch)
	if r.local {
		if err := stage.persist(nil); err != nil {
			return Result{}, err
		}
		if err := r.advanceLocal(branchRef, head, h); err != nil {
			return Result{}, err
		}
		return Result{Commit: h.String(), Changed: true, Previous: unchanged.Commit}, nil
	}
	if err := r.push(ctx, branchRef, head, h, stage); err != nil {
		return Result{}, err
	}
	return Result{Commit: h.String(), Changed: true, Previous: unchanged.Commit}, nil
}

// push sends exactly the objects this update wrote (the new blobs, the
// rewritten trees and the commit, staged in memory) and moves the remote
// branch from head to h. The update command carries head as its old value,
// which the server checks atomically: that is the lease — if the branch
// moved, the push is refused ("failed to update ref") and reported as
// ErrConflict. go-git's PushContext would instead walk every object
// reachable from the remote head to find what to send, which grows with the
// number of environments. Only a pushed update reaches the cache: its
// objects, then the refs. If writing them fails, the push still stands and
// the refs stay where they were, so the next read fetches the commit.
func (r *Repo) push(ctx context.Context, branchRef plumbing.ReferenceName, head *object.Commit, h plumbing.Hash, stage *staging) error {
	old := plumbing.ZeroHash
	if head != nil {
		old = head.Hash
	}
	pack, err := stage.pack()
	if err != nil {
		return err
	}
	if err := r.sendPack(ctx, branchRef, old, h, pack); err != nil {
		r.known = false
		return fmt.Errorf("push to %s: %w", redact(r.remote), classify(err))
	}
	if err := stage.persist(pack); err != nil {
		r.known = false
		return nil
	}
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(branchRef, h)); err != nil {
		return err
	}
	return r.repo.Storer.SetReference(plumbing.NewHashReference(r.trackingRef(), h))
}

func (r *Repo) sendPack(ctx context.Context, ref plumbing.ReferenceName, old, h plumbing.Hash, pack []byte) error {
	ep, err := transport.NewEndpoint(r.remote)
	if err != nil {
		return err
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return err
	}
	sess, err := cl.NewReceivePackSession(ep, r.opts.Auth)
	if err != nil {
		return err
	}
	defer sess.Close()
	caps, cached := r.pushCaps, r.pushCaps != nil
	for {
		if caps == nil {
			ar, err := sess.AdvertisedReferencesContext(ctx)
			if err != nil {
				return err
			}
			caps = ar.Capabilities
		}
		req := packp.NewReferenceUpdateRequestFromCapabilities(caps)
		req.Commands = []*packp.Command{{Name: ref, Old: old, New: h}}
		req.Packfile = io.NopCloser(bytes.NewReader(pack))
		rs, err := sess.ReceivePack(ctx, req)
		if rs == nil && err != nil && cached && ctx.Err() == nil {
			// No answer from receive-pack with remembered capabilities:
			// ask the server what it offers now and push once more (the
			// update command's old value still guards the branch).
			r.pushCaps, caps, cached = nil, nil, false
			continue
		}
		if err == nil && rs != nil {
			err = rs.Error()
		}
		if err == nil {
			r.pushCaps = caps
		}
		return err
	}
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

// classify maps transport errors to the typed errors above, and marks
// what a later attempt may not meet (the network, the server) as
// engine.Temporary; a missing repository or refused credentials stay
// terminal.
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
	switch {
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("%w: %v", ErrNoBranch, err)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod), errors.Is(err, context.Canceled):
		return err
	}
	return engine.Temporary(err)
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
