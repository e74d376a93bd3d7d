package gitrepo

import (
	"io/fs"
	"testing"
)

// Two Repos (two processes, e.g. serve and a CLI run) share one cache
// directory. When one fetches a commit someone else pushed, go-git writes
// the fetched objects as a new pack that the other's pack index does not
// list; the other must still read that commit (go-git fetches what its
// storage lacks again, so it heals by fetching).
func TestSharedCacheSeesPacksFetchedByAnother(t *testing.T) {
	rm := newRemote(t)
	rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	cache := t.TempDir()
	a := rm.open(t, func(o *Options) { o.CacheDir = cache })
	b := rm.open(t, func(o *Options) { o.CacheDir = cache })
	if _, _, err := a.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Someone else pushes; b fetches it into the shared cache.
	want := rm.seed(t, &Change{Message: "other", Files: files("README.md", "r", "other.txt", "o")})
	if _, head, err := b.Snapshot(t.Context()); err != nil || head != want {
		t.Fatalf("b: head %s, %v; want %s", head, err, want)
	}
	files, head, err := a.Snapshot(t.Context())
	if err != nil || head != want {
		t.Fatalf("a after b's fetch: head %s, %v; want %s", head, err, want)
	}
	if _, err := fs.ReadFile(files, "other.txt"); err != nil {
		t.Fatalf("a reads the fetched file: %v", err)
	}
}
