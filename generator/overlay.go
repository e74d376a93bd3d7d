package generator

import (
	"bytes"
	"errors"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/offshoot-dev/offshoot/internal/memfs"
)

// Overlay is a read-only fs.FS: Base with whole directories replaced by
// plans (a nil map removes the directory). Planning a batch of events on
// an Overlay lets each event see what the earlier ones wrote — a child
// created in the same batch as its parent finds the parent's metadata.
type Overlay struct {
	Base fs.FS
	Dirs map[string]map[string][]byte
}

var (
	_ fs.ReadFileFS = (*Overlay)(nil)
	_ fs.ReadDirFS  = (*Overlay)(nil)
)

// Apply records a plan's directories on top of what is there.
func (o *Overlay) Apply(dirs map[string]map[string][]byte) {
	if o.Dirs == nil {
		o.Dirs = map[string]map[string][]byte{}
	}
	for d, files := range dirs {
		o.Dirs[d] = files
	}
}

// replaced returns the replaced directory holding name, if any.
func (o *Overlay) replaced(name string) (dir string, files map[string][]byte, ok bool) {
	for d, f := range o.Dirs {
		if name == d || strings.HasPrefix(name, d+"/") {
			return d, f, true
		}
	}
	return "", nil, false
}

func (o *Overlay) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrInvalid}
	}
	if d, files, ok := o.replaced(name); ok {
		if data, ok := files[strings.TrimPrefix(name, d+"/")]; ok && name != d {
			return bytes.Clone(data), nil
		}
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrNotExist}
	}
	return fs.ReadFile(o.Base, name)
}

func (o *Overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	entries := map[string]fs.DirEntry{}
	if d, files, ok := o.replaced(name); ok {
		if files == nil {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
		}
		prefix := ""
		if name != d {
			prefix = strings.TrimPrefix(name, d+"/") + "/"
		}
		for rel := range files {
			if !strings.HasPrefix(rel, prefix) {
				continue
			}
			rest := strings.TrimPrefix(rel, prefix)
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				entries[rest[:i]] = memfs.Info{FileName: rest[:i], Dir: true}
			} else {
				entries[rest] = memfs.Info{FileName: rest, Bytes: int64(len(files[rel]))}
			}
		}
		if len(entries) == 0 && name != d {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
		}
		return sortedEntries(entries), nil
	}
	base, err := fs.ReadDir(o.Base, name)
	baseMissing := errors.Is(err, fs.ErrNotExist)
	if err != nil && !baseMissing {
		return nil, err
	}
	for _, e := range base {
		entries[e.Name()] = e
	}
	// Replaced directories directly below name appear or disappear.
	added := false
	for d, files := range o.Dirs {
		parent, child := path.Split(d)
		parent = strings.TrimSuffix(parent, "/")
		if parent == "" {
			parent = "."
		}
		if parent != name {
			if files != nil && (name == "." || strings.HasPrefix(d, name+"/")) {
				// a deeper replaced dir: make sure its first component under name exists
				rest := strings.TrimPrefix(d, name+"/")
				if name == "." {
					rest = d
				}
				first := strings.SplitN(rest, "/", 2)[0]
				if _, ok := entries[first]; !ok {
					entries[first] = memfs.Info{FileName: first, Dir: true}
					added = true
				}
			}
			continue
		}
		if files == nil {
			delete(entries, child)
		} else {
			entries[child] = memfs.Info{FileName: child, Dir: true}
			added = true
		}
	}
	if baseMissing && !added {
		return nil, err
	}
	return sortedEntries(entries), nil
}

func (o *Overlay) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if _, _, ok := o.replaced(name); !ok && !o.isAncestor(name) {
		return o.Base.Open(name) // untouched by the overlay
	}
	if data, err := o.ReadFile(name); err == nil {
		return memfs.File(path.Base(name), data), nil
	}
	entries, err := o.ReadDir(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	var info fs.FileInfo = memfs.Info{FileName: path.Base(name), Dir: true}
	if _, _, rep := o.replaced(name); !rep {
		if st, err := fs.Stat(o.Base, name); err == nil && st.IsDir() {
			info = st // a merged ancestor: keep what the base says of it
		}
	}
	return memfs.Dir(info, entries), nil
}

// isAncestor reports whether a replaced directory lies below name.
func (o *Overlay) isAncestor(name string) bool {
	for d := range o.Dirs {
		if name == "." || strings.HasPrefix(d, name+"/") {
			return true
		}
	}
	return false
}

func sortedEntries(m map[string]fs.DirEntry) []fs.DirEntry {
	out := make([]fs.DirEntry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}
