package memfs

import (
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Map is a read-only file system of whole files in memory, by slash path;
// directories are implied by the files under them.
type Map map[string][]byte

// Open opens a file or an implied directory.
func (m Map) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if data, ok := m[name]; ok {
		return File(path.Base(name), data), nil
	}
	entries, err := m.ReadDir(name)
	if err != nil {
		return nil, err
	}
	return Dir(Info{FileName: path.Base(name), Dir: true}, entries), nil
}

// ReadFile returns a copy of a file's content.
func (m Map) ReadFile(name string) ([]byte, error) {
	if data, ok := m[name]; ok {
		return append([]byte(nil), data...), nil
	}
	return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
}

// ReadDir lists a directory, sorted by name.
func (m Map) ReadDir(name string) ([]fs.DirEntry, error) {
	prefix := name + "/"
	if name == "." {
		prefix = ""
	}
	seen := map[string]Info{}
	for p, data := range m {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seen[rest[:i]] = Info{FileName: rest[:i], Dir: true}
		} else {
			seen[rest] = Info{FileName: rest, Bytes: int64(len(data))}
		}
	}
	if len(seen) == 0 && name != "." {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	out := make([]fs.DirEntry, 0, len(seen))
	for _, e := range seen {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}
