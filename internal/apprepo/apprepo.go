// Package apprepo is offshoot's adapter to the APP repository (the
// repository whose branches get environments), built on go-git. It lists the
// remote's branches without fetching, keeps an incrementally fetched bare
// clone in a cache directory, and detects which existing environment a new
// branch was cut from (its parent, whose database it clones) by walking
// commit ancestry in that clone. There is no worktree and nothing is written
// to the app repo.
package apprepo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/gofrs/flock"

	"github.com/offshoot-dev/offshoot/internal/gitcache"
)

// Typed errors callers can act on.
var (
	// ErrNoBranches: the app repo exists and answered, but has no branches.
	// A failed listing is never reported this way.
	ErrNoBranches = errors.New("the app repo has no branches")
	// ErrNoParent: no candidate environment shares history with the branch.
	ErrNoParent = errors.New("no parent environment found")
)

// trackingPrefix is where the cached clone keeps the remote's branches.
const trackingPrefix = "refs/remotes/origin/"

// Options say where the app repo is.
type Options struct {
	// URL of the app repo: http(s)://, ssh://, git@host:path, file:// or a
	// local path.
	URL string
	// CacheDir holds the bare cached clone, under CacheDir/apprepos/<hash>.
	// Empty means the user cache directory (…/offshoot).
	CacheDir string
	// Auth for the remote; nil means anonymous or credentials in the URL.
	Auth transport.AuthMethod
	// AllowInsecureHTTP lets credentials go over plain http:// to a host
	// that is not loopback (refused otherwise).
	AllowInsecureHTTP bool
}

// Repo is an opened app repo: its remote and the cached clone of it.
type Repo struct {
	opts   Options
	remote string // the URL, or the absolute local path
	dir    string // the bare cached clone
	repo   *git.Repository
	st     *filesystem.Storage
	mu     sync.Mutex   // serialises use within this process
	lock   *flock.Flock // serialises use of the cache across processes
	packs  []plumbing.Hash
	closed bool

	// walkLimit bounds ancestry walks (see DetectParent).
	walkLimit int
}

// Open opens the cached clone of the app repo, creating an empty one (with
// origin pointing at the URL) if needed. It does not touch the network.
func Open(ctx context.Context, o Options) (*Repo, error) {
	if o.URL == "" {
		return nil, errors.New("no app repo given")
	}
	remote, err := gitcache.Remote(o.URL, "app repo")
	if err != nil {
		return nil, err
	}
	if err := gitcache.CheckTransport(remote, o.Auth != nil, o.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("app repo: %w", err)
	}
	o.CacheDir = gitcache.DefaultRoot(o.CacheDir)
	c, err := gitcache.Open(ctx, remote, o.CacheDir, "apprepos", fetchSpec)
	if err != nil {
		return nil, err
	}
	r, dir, lk := c.Repo, c.Dir, c.Lock
	// Reopen the storage keeping pack files open: an ancestry walk reads
	// thousands of commits and would otherwise reopen the pack for each.
	plain, ok := r.Storer.(*filesystem.Storage)
	if !ok {
		return nil, fmt.Errorf("cache clone in %s: unexpected storage %T", dir, r.Storer)
	}
	st := filesystem.NewStorageWithOptions(plain.Filesystem(), cache.NewObjectLRUDefault(), filesystem.Options{KeepDescriptors: true})
	if r, err = git.Open(st, nil); err != nil {
		return nil, fmt.Errorf("cache clone of %s in %s: %w", redact(remote), dir, err)
	}
	return &Repo{opts: o, remote: remote, dir: dir, repo: r, st: st, lock: lk, walkLimit: defaultWalkLimit}, nil
}

var fetchSpec = config.RefSpec("+refs/heads/*:" + trackingPrefix + "*")

func lockCtx(ctx context.Context, lk *flock.Flock) error { return gitcache.LockCtx(ctx, lk) }

// errClosed: the Repo was closed.
var errClosed = errors.New("app repo cache is closed")

// acquire takes the in-process mutex and the cache's file lock, and makes
// sure packs another process fetched meanwhile are seen.
func (r *Repo) acquire(ctx context.Context) (release func(), err error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errClosed
	}
	if err := lockCtx(ctx, r.lock); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	release = func() { _ = r.lock.Unlock(); r.mu.Unlock() }
	packs, err := r.st.ObjectPacks()
	if err != nil {
		release()
		return nil, fmt.Errorf("cache clone in %s: %w", r.dir, err)
	}
	if !slices.Equal(packs, r.packs) {
		r.st.Reindex()
		r.packs = packs
	}
	return release, nil
}

// Close releases the cache's open files. The Repo is unusable afterwards
// (Branches, which does not use the cache, still works).
func (r *Repo) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.st.Close()
}

// URL is the app repo as given.
func (r *Repo) URL() string { return r.opts.URL }

// Dir is the cached bare clone on disk.
func (r *Repo) Dir() string { return r.dir }

// Branches lists the remote's branches (like git ls-remote --heads, no
// fetch): raw branch name → head SHA (hex). A failed listing is an error,
// never an empty map; a remote without branches gives ErrNoBranches, so an
// outage can never look like "every branch was deleted".
func (r *Repo) Branches(ctx context.Context) (map[string]string, error) {
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{r.remote}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: r.opts.Auth, PeelingOption: git.IgnorePeeled})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return nil, fmt.Errorf("%w: %s", ErrNoBranches, redact(r.remote))
	}
	if err != nil {
		return nil, fmt.Errorf("list branches of %s: %w", redact(r.remote), redactErr(err))
	}
	out := map[string]string{}
	for _, ref := range refs {
		if ref.Type() != plumbing.HashReference || !ref.Name().IsBranch() {
			continue
		}
		out[strings.TrimPrefix(ref.Name().String(), "refs/heads/")] = ref.Hash().String()
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoBranches, redact(r.remote))
	}
	return out, nil
}

// Fetch updates the cached clone incrementally: every branch of the remote
// into refs/remotes/origin/*, pruning branches the remote no longer has.
// An empty remote gives ErrNoBranches (and the cache is left as it was).
func (r *Repo) Fetch(ctx context.Context) error {
	release, err := r.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	return r.fetch(ctx)
}

func (r *Repo) fetch(ctx context.Context) error {
	err := r.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RemoteURL:  r.remote,
		RefSpecs:   []config.RefSpec{fetchSpec},
		Auth:       r.opts.Auth,
		Tags:       git.NoTags,
		Force:      true,
		Prune:      true,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case errors.Is(err, transport.ErrEmptyRemoteRepository), isNoMatchingRef(err):
		return fmt.Errorf("fetch %s: %w", redact(r.remote), ErrNoBranches)
	default:
		return fmt.Errorf("fetch %s: %w", redact(r.remote), redactErr(err))
	}
}

func isNoMatchingRef(err error) bool {
	var nm git.NoMatchingRefSpecError
	return errors.As(err, &nm)
}

func looksLikeURL(s string) bool { return gitcache.LooksLikeURL(s) }

// redact hides credentials in a URL.
func redact(u string) string { return gitcache.Redact(u) }

// redactErr hides credentials in URLs that an error message may quote.
func redactErr(err error) error {
	msg := err.Error()
	clean := msg
	for _, f := range strings.Fields(msg) {
		f = strings.Trim(f, `"'()<>,;`)
		if r := redact(f); r != f {
			clean = strings.ReplaceAll(clean, f, r)
		}
	}
	if clean == msg {
		return err
	}
	return redactedError{msg: clean, err: err}
}

// redactedError keeps the cause for errors.Is/As but prints it redacted.
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
