package gitrepo

import (
	"fmt"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"io/fs"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Change is what one commit does to the tree (the engine's type).
type Change = engine.Change

// node is one directory of the change, as a trie.
type node struct {
	replace bool // ignore what the directory held before
	files   map[string][]byte
	dirs    map[string]*node
}

func newNode() *node { return &node{files: map[string][]byte{}, dirs: map[string]*node{}} }

func (n *node) child(name string) *node {
	c, ok := n.dirs[name]
	if !ok {
		c = newNode()
		n.dirs[name] = c
	}
	return c
}

func (n *node) walk(dir string) (*node, error) {
	cur := n
	if dir == "." || dir == "" {
		return cur, nil
	}
	for _, part := range strings.Split(dir, "/") {
		cur = cur.child(part)
	}
	return cur, nil
}

func buildTrie(c *Change) (*node, error) {
	root := newNode()
	dirs := make([]string, 0, len(c.Dirs))
	for d := range c.Dirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs) // parents before children, so a removal never hides a nested write
	for _, d := range dirs {
		if !fs.ValidPath(d) || d == "." {
			return nil, fmt.Errorf("invalid directory %q in change", d)
		}
		n, _ := root.walk(d)
		n.replace = true
		n.files, n.dirs = map[string][]byte{}, map[string]*node{}
		for rel, data := range c.Dirs[d] {
			if !fs.ValidPath(rel) || rel == "." {
				return nil, fmt.Errorf("invalid file %q in directory %q", rel, d)
			}
			if err := put(n, rel, data); err != nil {
				return nil, err
			}
		}
	}
	for p, data := range c.Files {
		if !fs.ValidPath(p) || p == "." {
			return nil, fmt.Errorf("invalid file %q in change", p)
		}
		if err := put(root, p, data); err != nil {
			return nil, err
		}
	}
	return root, nil
}

func put(n *node, rel string, data []byte) error {
	dir, name := "", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, name = rel[:i], rel[i+1:]
	}
	d, err := n.walk(dir)
	if err != nil {
		return err
	}
	if data == nil {
		data = []byte{}
	}
	d.files[name] = data
	return nil
}

// writeTree applies the trie to the tree with hash base (zero for none) and
// stores every new blob and tree. It returns the new tree's hash, or the
// zero hash when the result is empty.
func writeTree(s storer.EncodedObjectStorer, base plumbing.Hash, n *node) (plumbing.Hash, error) {
	return writeTreeCached(s, base, n, nil)
}

// writeTreeCached is writeTree reading base trees through c (may be nil).
// The new tree is the base's entries, in their order, with this node's
// changes merged in: an event changes one entry of envs/, so nothing is
// re-sorted or re-keyed per environment.
func writeTreeCached(s storer.EncodedObjectStorer, base plumbing.Hash, n *node, c *treeCache) (plumbing.Hash, error) {
	var old []object.TreeEntry
	if !base.IsZero() && !n.replace {
		t, err := c.getTree(s, base)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		old = t.Entries
	}
	// changed: the new entry of each name this node writes, nil to remove it.
	changed := make(map[string]*object.TreeEntry, len(n.files)+len(n.dirs))
	for name, data := range n.files {
		h, err := writeBlob(s, data)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		changed[name] = &object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h}
	}
	for name, child := range n.dirs {
		var childBase plumbing.Hash
		if e := findEntry(old, name+"/"); e != nil {
			childBase = e.Hash
		}
		h, err := writeTreeCached(s, childBase, child, c)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		changed[name] = nil
		if !h.IsZero() {
			changed[name] = &object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
		}
	}
	added := make([]object.TreeEntry, 0, len(changed))
	for _, e := range changed {
		if e != nil {
			added = append(added, *e)
		}
	}
	sort.Slice(added, func(i, j int) bool { return treeKey(added[i]) < treeKey(added[j]) })
	entries := make([]object.TreeEntry, 0, len(old)+len(added))
	i := 0
	for _, e := range old {
		if _, ok := changed[e.Name]; ok {
			continue // rewritten (its new entry is in added) or removed
		}
		for k := treeKey(e); i < len(added) && treeKey(added[i]) < k; i++ {
			entries = append(entries, added[i])
		}
		entries = append(entries, e)
	}
	entries = append(entries, added[i:]...)
	if len(entries) == 0 {
		return plumbing.ZeroHash, nil
	}
	t := &object.Tree{Entries: entries}
	obj := s.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil || c == nil || len(t.Entries) < treeCacheMinEntries {
		return h, err
	}
	// A large tree (envs/) is what the next event reads and rewrites: keep
	// it decoded. Not t itself: go-git only binary-searches trees it decoded
	// (a constructed one is scanned linearly on every lookup), so decode
	// the object just encoded — from memory, while it is staged.
	var dt object.Tree
	if err := dt.Decode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	c.put(&dt)
	return h, nil
}

// treeKey is what git orders tree entries by: the name, with a '/' after a
// directory's.
func treeKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

// findEntry finds the entry whose treeKey is key in entries, sorted as git
// sorts them.
func findEntry(entries []object.TreeEntry, key string) *object.TreeEntry {
	i := sort.Search(len(entries), func(i int) bool { return treeKey(entries[i]) >= key })
	if i < len(entries) && treeKey(entries[i]) == key {
		return &entries[i]
	}
	return nil
}

func writeBlob(s storer.EncodedObjectStorer, data []byte) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(data)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(data); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(obj)
}
