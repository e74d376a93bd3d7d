// Package gitcache holds what offshoot's two git adapters share: bare
// cached clones keyed by remote, locked across processes, and credential
// redaction for every message that quotes a URL.
package gitcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/gofrs/flock"
)

// LooksLikeURL reports whether s is a git URL rather than a local path.
func LooksLikeURL(s string) bool {
	if strings.Contains(s, "://") {
		return true
	}
	// scp-like ssh syntax: user@host:path
	at, colon := strings.Index(s, "@"), strings.Index(s, ":")
	return at > 0 && colon > at && !strings.Contains(s[:colon], "/")
}

// Redact hides credentials in a URL.
func Redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 && at < strings.IndexAny(rest+"/", "/") {
			return u[:i+3] + "***@" + rest[at+1:]
		}
	}
	return u
}

// Remote resolves a location to what a cache clone fetches from: URLs as
// they are, local paths made absolute (and required to exist).
func Remote(location, what string) (string, error) {
	if LooksLikeURL(location) {
		return location, nil
	}
	abs, err := filepath.Abs(location)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("%s %s: %w", what, location, err)
	}
	return abs, nil
}

// DefaultRoot is the cache root when none is given: the user cache dir.
func DefaultRoot(root string) string {
	if root != "" {
		return root
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "offshoot")
}

// LockCtx takes a file lock, polling until ctx is done.
func LockCtx(ctx context.Context, lk *flock.Flock) error {
	ok, err := lk.TryLockContext(ctx, 50*time.Millisecond)
	if err != nil {
		return fmt.Errorf("lock %s: %w", lk.Path(), err)
	}
	if !ok {
		return fmt.Errorf("lock %s: not acquired", lk.Path())
	}
	return nil
}

// Clone is a bare cache clone of one remote.
type Clone struct {
	Repo *git.Repository
	Dir  string
	Lock *flock.Flock // <Dir>.lock; not held when Open returns
}

// Open opens (or initialises) the bare clone of remote under
// root/kind/<hash of remote>, with an origin remote using fetch specs. It
// does not touch the network.
func Open(ctx context.Context, remote, root, kind string, fetch ...config.RefSpec) (*Clone, error) {
	sum := sha256.Sum256([]byte(remote))
	dir := filepath.Join(DefaultRoot(root), kind, hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lk := flock.New(dir + ".lock")
	if err := LockCtx(ctx, lk); err != nil {
		return nil, err
	}
	defer lk.Unlock()
	// Keep up to 16 packfiles open between object reads (go-git otherwise
	// opens and stats the packfile for every object it reads from it), with
	// a larger decoded-object cache: a long-lived serve reads the same trees
	// event after event.
	st := filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(64*cache.MiByte), filesystem.Options{MaxOpenDescriptors: 16})
	r, err := git.Open(st, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		r, err = git.PlainInit(dir, true)
		if err == nil {
			r, err = git.Open(st, nil)
		}
	}
	if err == nil {
		// (Re)create origin if an earlier Open died between init and this.
		if _, err = r.Remote("origin"); errors.Is(err, git.ErrRemoteNotFound) {
			_, err = r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{remote}, Fetch: fetch})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cache clone of %s in %s: %w", Redact(remote), dir, err)
	}
	return &Clone{Repo: r, Dir: dir, Lock: lk}, nil
}
