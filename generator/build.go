package generator

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomize keeps global state (its OpenAPI schema cache, builtin plugin
// registry) that is not safe for concurrent builds: serialise them.
var buildMu sync.Mutex

// BuildError is a kustomize build that failed.
type BuildError struct {
	Dir string
	Err error
}

func (e *BuildError) Error() string { return fmt.Sprintf("kustomize build %s: %v", e.Dir, e.Err) }
func (e *BuildError) Unwrap() error { return e.Err }

// Build runs an in-process kustomize build of dir over a copy of repo in
// memory, with plugins off and loading restricted to each kustomization's
// root: the build can read nothing but the repository's own files.
// Directories under envs/ other than dir are left out of the copy, so the
// cost does not grow with the number of environments. overlay replaces the
// files of dir (nil: use the repo's).
func Build(repo fs.FS, dir string, overlay map[string][]byte) (yamlOut []byte, objs []map[string]any, err error) {
	mem := filesys.MakeFsInMemory()
	if err := copyRepo(repo, mem, dir, overlay); err != nil {
		return nil, nil, err
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = &BuildError{Dir: dir, Err: fmt.Errorf("kustomize panicked: %v", r)}
		}
	}()
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()
	rm, err := krusty.MakeKustomizer(opts).Run(mem, "/"+dir)
	if err != nil {
		return nil, nil, &BuildError{Dir: dir, Err: err}
	}
	out, err := rm.AsYaml()
	if err != nil {
		return nil, nil, &BuildError{Dir: dir, Err: err}
	}
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			return nil, nil, &BuildError{Dir: dir, Err: err}
		}
		objs = append(objs, m)
	}
	return out, objs, nil
}

func copyRepo(repo fs.FS, mem filesys.FileSystem, dir string, overlay map[string][]byte) error {
	write := func(p string, data []byte) error {
		if err := mem.MkdirAll("/" + path.Dir(p)); err != nil {
			return err
		}
		return mem.WriteFile("/"+p, data)
	}
	err := fs.WalkDir(repo, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == EnvsDir {
				return fs.SkipDir // only the environment being built is copied
			}
			return nil
		}
		data, err := fs.ReadFile(repo, p)
		if err != nil {
			return err
		}
		return write(p, data)
	})
	if err != nil {
		return fmt.Errorf("read environments repo: %w", err)
	}
	if overlay != nil {
		for rel, data := range overlay {
			if err := write(path.Join(dir, rel), data); err != nil {
				return err
			}
		}
		return nil
	}
	err = fs.WalkDir(repo, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		data, err := fs.ReadFile(repo, p)
		if err != nil {
			return err
		}
		return write(p, data)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", dir, ErrNoEnv)
	}
	return err
}
