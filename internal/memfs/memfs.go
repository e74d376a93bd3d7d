// Package memfs has the small fs.File and fs.FileInfo values that offshoot's
// read-only file systems (a git tree, an overlay of planned changes) hand
// out, so that each of them only decides what is where.
package memfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"time"
)

// Info is a FileInfo (and, for a directory listing, a DirEntry).
type Info struct {
	FileName string
	Bytes    int64
	Dir      bool
	Perm     fs.FileMode // default 0644 for files, 0755 for directories
}

func (i Info) Name() string { return i.FileName }
func (i Info) Size() int64  { return i.Bytes }
func (i Info) Mode() fs.FileMode {
	switch {
	case i.Dir && i.Perm == 0:
		return fs.ModeDir | 0o755
	case i.Dir:
		return fs.ModeDir | i.Perm
	case i.Perm == 0:
		return 0o644
	}
	return i.Perm
}
func (i Info) ModTime() time.Time { return time.Time{} }
func (i Info) IsDir() bool        { return i.Dir }
func (i Info) Sys() any           { return nil }

// DirEntry methods, so an Info can stand in a listing.
func (i Info) Type() fs.FileMode          { return i.Mode().Type() }
func (i Info) Info() (fs.FileInfo, error) { return i, nil }

// File is an open regular file holding data.
func File(name string, data []byte) fs.File {
	return &file{Reader: bytes.NewReader(data), info: Info{FileName: name, Bytes: int64(len(data))}}
}

type file struct {
	*bytes.Reader
	info Info
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Close() error               { return nil }

// Dir is an open directory listing entries (already sorted by name).
func Dir(info fs.FileInfo, entries []fs.DirEntry) fs.ReadDirFile {
	return &dir{info: info, entries: entries}
}

type dir struct {
	info    fs.FileInfo
	entries []fs.DirEntry
	off     int
}

func (d *dir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.Name(), Err: errors.New("is a directory")}
}
func (d *dir) Close() error { return nil }

// ReadDir follows fs.ReadDirFile: n <= 0 returns the rest, otherwise at
// most n entries and io.EOF at the end.
func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.off += n
	return rest[:n], nil
}
