package gitrepo

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/offshoot-dev/offshoot/internal/memfs"
)

// treeFS is a read-only fs.FS over one git tree, read straight from the
// object database: no checkout, and only what is asked for is read.
type treeFS struct {
	s    storer.EncodedObjectStorer
	root *object.Tree // nil for an empty repository
	// dirs caches decoded directories by path (nil: no cache). go-git's
	// Tree.FindEntry never caches the first path component, so without it
	// every read of envs/<env>/… decodes the whole envs/ tree again — one
	// entry per environment — and reading every env.yaml is O(N²).
	dirs *dirCache
	// shared keeps large decoded trees across snapshots (nil: none).
	shared *treeCache
}

// treeCache keeps the few largest directories decoded between updates: the
// envs/ tree has one entry per environment, and each event reads it (to
// find its environment) and rewrites it from that same decoded tree. Only
// trees go-git decoded are kept (it binary-searches those, and scans any
// other linearly); they are immutable (named by hash), so sharing them is
// safe once go-git's lazily made path cache exists.
type treeCache struct {
	mu    sync.Mutex
	order []plumbing.Hash
	trees map[plumbing.Hash]*object.Tree
}

const (
	treeCacheMinEntries = 64 // smaller trees decode in microseconds
	treeCacheSize       = 4
)

func newTreeCache() *treeCache { return &treeCache{trees: map[plumbing.Hash]*object.Tree{}} }

// getTree returns the tree h, decoding it (and keeping it, if large) when it
// is not cached. c may be nil.
func (c *treeCache) getTree(s storer.EncodedObjectStorer, h plumbing.Hash) (*object.Tree, error) {
	if c != nil {
		c.mu.Lock()
		t, ok := c.trees[h]
		c.mu.Unlock()
		if ok {
			return t, nil
		}
	}
	t, err := object.GetTree(s, h)
	if err != nil {
		return nil, err
	}
	c.put(t)
	return t, nil
}

// put keeps t, a tree decoded by go-git, if it is large; t must not be
// modified afterwards.
func (c *treeCache) put(t *object.Tree) {
	if c == nil || len(t.Entries) < treeCacheMinEntries || t.Hash.IsZero() {
		return
	}
	// go-git makes a tree's path cache on its first lookup: make it now,
	// before other goroutines may read the tree.
	_, _ = t.FindEntry(t.Entries[0].Name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.trees[t.Hash]; ok {
		return
	}
	if len(c.order) >= treeCacheSize {
		delete(c.trees, c.order[0])
		c.order = c.order[1:]
	}
	c.order = append(c.order, t.Hash)
	c.trees[t.Hash] = t
}

type dirCache struct {
	mu    sync.Mutex
	trees map[string]*object.Tree
}

// newTreeFS is a treeFS over root with a directory cache.
func newTreeFS(s storer.EncodedObjectStorer, root *object.Tree) treeFS {
	return treeFS{s: s, root: root, dirs: &dirCache{trees: map[string]*object.Tree{}}}
}

// dir returns the entry and, for a directory, the tree of p (not "."),
// from the cache when it can.
func (t treeFS) dir(p string) (*object.TreeEntry, *object.Tree, error) {
	parent, base := ".", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		parent, base = p[:i], p[i+1:]
	}
	pt := t.root
	if parent != "." {
		var err error
		if _, pt, err = t.dir(parent); err != nil {
			return nil, nil, err
		}
		if pt == nil {
			return nil, nil, fs.ErrNotExist
		}
	}
	e, err := pt.FindEntry(base) // one component: pt's own entry map
	if err != nil {
		return nil, nil, fs.ErrNotExist
	}
	if e.Mode != filemode.Dir {
		return e, nil, nil
	}
	t.dirs.mu.Lock()
	sub, ok := t.dirs.trees[p]
	t.dirs.mu.Unlock()
	if ok {
		return e, sub, nil
	}
	sub, err = t.shared.getTree(t.s, e.Hash)
	if err != nil {
		return nil, nil, err
	}
	t.dirs.mu.Lock()
	t.dirs.trees[p] = sub
	t.dirs.mu.Unlock()
	return e, sub, nil
}

var (
	_ fs.ReadFileFS = treeFS{}
	_ fs.ReadDirFS  = treeFS{}
)

func (t treeFS) lookup(op, name string) (*object.TreeEntry, *object.Tree, error) {
	if !fs.ValidPath(name) {
		return nil, nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if t.root == nil {
		if name == "." {
			return nil, &object.Tree{}, nil
		}
		return nil, nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if name == "." {
		return nil, t.root, nil
	}
	if t.dirs != nil {
		e, sub, err := t.dir(name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if err != nil {
			return nil, nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		return e, sub, nil
	}
	e, err := t.root.FindEntry(name)
	if err != nil {
		return nil, nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if e.Mode == filemode.Dir {
		sub, err := object.GetTree(t.s, e.Hash)
		if err != nil {
			return nil, nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		return e, sub, nil
	}
	return e, nil, nil
}

func (t treeFS) ReadFile(name string) ([]byte, error) {
	e, dir, err := t.lookup("readfile", name)
	if err != nil {
		return nil, err
	}
	if dir != nil {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	return t.blob(name, e.Hash)
}

func (t treeFS) blob(name string, h plumbing.Hash) ([]byte, error) {
	b, err := object.GetBlob(t.s, h)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	r, err := b.Reader()
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	defer r.Close()
	return io.ReadAll(r)
}

func (t treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	_, dir, err := t.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if dir == nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	out := make([]fs.DirEntry, 0, len(dir.Entries))
	for _, e := range dir.Entries {
		if e.Mode == filemode.Submodule {
			continue
		}
		out = append(out, dirEntry{s: t.s, e: e})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (t treeFS) Open(name string) (fs.File, error) {
	e, dir, err := t.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if dir != nil {
		entries, err := t.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return memfs.Dir(memfs.Info{FileName: path.Base(name), Dir: true}, entries), nil
	}
	data, err := t.blob(name, e.Hash)
	if err != nil {
		return nil, err
	}
	return memfs.File(path.Base(name), data), nil
}

type dirEntry struct {
	s storer.EncodedObjectStorer
	e object.TreeEntry
}

func (d dirEntry) Name() string { return d.e.Name }
func (d dirEntry) IsDir() bool  { return d.e.Mode == filemode.Dir }
func (d dirEntry) Type() fs.FileMode {
	if d.IsDir() {
		return fs.ModeDir
	}
	return 0
}
func (d dirEntry) Info() (fs.FileInfo, error) {
	if d.IsDir() {
		return memfs.Info{FileName: d.e.Name, Dir: true}, nil
	}
	size, err := d.s.EncodedObjectSize(d.e.Hash)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: d.e.Name, Err: err}
	}
	return memfs.Info{FileName: d.e.Name, Bytes: size}, nil
}
