package gitrepo

import (
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Change is what one commit does to the tree.
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
func writeTreeCached(s storer.EncodedObjectStorer, base plumbing.Hash, n *node, c *treeCache) (plumbing.Hash, error) {
	entries := map[string]object.TreeEntry{}
	if !base.IsZero() && !n.replace {
		t, err := c.getTree(s, base)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		for _, e := range t.Entries {
			entries[e.Name] = e
		}
	}
	for name, data := range n.files {
		h, err := writeBlob(s, data)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries[name] = object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h}
	}
	for name, child := range n.dirs {
		var childBase plumbing.Hash
		if e, ok := entries[name]; ok && e.Mode == filemode.Dir {
			childBase = e.Hash
		}
		h, err := writeTreeCached(s, childBase, child, c)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if h.IsZero() {
			delete(entries, name)
			continue
		}
		entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, nil
	}
	// git orders entries by name, comparing a directory as if it ended in
	// '/'. The keys are made once: envs/ has one entry per environment.
	type keyed struct {
		key string
		e   object.TreeEntry
	}
	ks := make([]keyed, 0, len(entries))
	for _, e := range entries {
		k := e.Name
		if e.Mode == filemode.Dir {
			k += "/"
		}
		ks = append(ks, keyed{k, e})
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].key < ks[j].key })
	t := &object.Tree{Entries: make([]object.TreeEntry, len(ks))}
	for i, k := range ks {
		t.Entries[i] = k.e
	}
	obj := s.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	// t is not cached: go-git only binary-searches trees it decoded itself
	// (a constructed one is scanned linearly on every lookup). The next
	// snapshot decodes it once and caches that.
	return s.SetEncodedObject(obj)
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
