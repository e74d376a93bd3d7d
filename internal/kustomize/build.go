// Package kustomize runs kustomize builds in process, as Argo CD's
// repo-server runs them: over an in-memory copy of the repository, plugins
// off, loading restricted to each kustomization's root. It also keeps
// concurrent builds correct (kyaml's process-wide OpenAPI schema).
package kustomize

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/internal/memfs"
)

// ErrNoDir: the directory to build does not exist.
var ErrNoDir = errors.New("no such directory")

// buildMu orders kustomize builds against the one thing in kustomize that
// is not safe for concurrent builds: a kustomization that changes its
// global OpenAPI schema (an `openapi:` or `crds:` field). Builds of
// kustomizations without those — offshoot's overlays and a base without
// them — share the read lock and run in parallel (in parallel); any other
// build takes the write lock.
//
// kyaml also fills that schema lazily, and its namespace-scope lookups read
// it without waiting for the fill (kyaml v0.20.1 openapi.IsNamespaceScoped),
// so every build first makes sure the schema is complete (readySchema), and
// a build that may have changed it restores the default before others run.
var buildMu sync.RWMutex

// readySchema completes kyaml's global OpenAPI schema if it is not yet:
// the first caller parses it under kyaml's own lock, concurrent callers wait
// for that, later ones only take the lock.
func readySchema() { _ = openapi.Schema() }

// BuildError is a kustomize build that failed.
type BuildError struct {
	Dir string
	Err error
}

func (e *BuildError) Error() string { return fmt.Sprintf("kustomize build %s: %v", e.Dir, e.Err) }
func (e *BuildError) Unwrap() error { return e.Err }

// Options tune one build.
type Options struct {
	// Skip is a directory of the repository left out of the copy, except
	// for the directory being built: with Skip = the environments'
	// directory, a build's cost does not grow with their number.
	Skip string
	// Overlay replaces the files of the directory built (nil: the repo's).
	Overlay map[string][]byte
	// Brief skips serialising the output, and keeps whole objects only for
	// the kinds in Full (the others: kind, name and namespace).
	Brief bool
	Full  []string
}

// Build builds dir of repo and returns the YAML (unless Brief) and the objects.
func Build(repo fs.FS, dir string, o Options) (yamlOut []byte, objs []map[string]any, err error) {
	mem := filesys.MakeFsInMemory()
	shared, err := copyRepo(repo, mem, dir, o)
	if err != nil {
		return nil, nil, err
	}
	if shared {
		buildMu.RLock()
		defer buildMu.RUnlock()
	} else {
		buildMu.Lock()
		defer buildMu.Unlock()
		// An openapi: field leaves its schema set in kyaml for every
		// later build; put the default back.
		defer openapi.ResetOpenAPI()
	}
	readySchema()
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
	if !o.Brief {
		if yamlOut, err = rm.AsYaml(); err != nil {
			return nil, nil, &BuildError{Dir: dir, Err: err}
		}
	}
	for _, r := range rm.Resources() {
		kind := r.GetKind()
		if o.Brief && !slices.Contains(o.Full, kind) {
			objs = append(objs, map[string]any{"kind": kind, "metadata": map[string]any{"name": r.GetName(), "namespace": r.GetNamespace()}})
			continue
		}
		m, err := r.Map()
		if err != nil {
			return nil, nil, &BuildError{Dir: dir, Err: err}
		}
		objs = append(objs, m)
	}
	return yamlOut, objs, nil
}

// Snapshot reads every file of repo outside skip into memory: an immutable
// view that concurrent builds can share.
func Snapshot(repo fs.FS, skip string) (fs.FS, error) {
	snap := memfs.Map{}
	err := fs.WalkDir(repo, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == skip {
				return fs.SkipDir
			}
			return nil
		}
		data, err := fs.ReadFile(repo, p)
		if err != nil {
			return err
		}
		snap[p] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the repository: %w", err)
	}
	return snap, nil
}

// changesGlobalSchema reports whether a kustomization file sets the fields
// that make kustomize replace its process-wide OpenAPI schema.
func changesGlobalSchema(p string, data []byte) bool {
	switch path.Base(p) {
	case "kustomization.yaml", "kustomization.yml", "Kustomization":
	default:
		return false
	}
	if !bytes.Contains(data, []byte("openapi")) && !bytes.Contains(data, []byte("crds")) {
		return false
	}
	var k struct {
		OpenAPI map[string]any `json:"openapi"`
		CRDs    []string       `json:"crds"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		return true // unreadable here: kustomize will say why; build it alone
	}
	return len(k.OpenAPI) > 0 || len(k.CRDs) > 0
}

// copyRepo copies the shared files and dir into mem; shared is false when a
// kustomization among them changes kustomize's global schema.
func copyRepo(repo fs.FS, mem filesys.FileSystem, dir string, o Options) (shared bool, err error) {
	shared = true
	write := func(p string, data []byte) error {
		if changesGlobalSchema(p, data) {
			shared = false
		}
		if err := mem.MkdirAll("/" + path.Dir(p)); err != nil {
			return err
		}
		return mem.WriteFile("/"+p, data)
	}
	err = fs.WalkDir(repo, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == o.Skip && o.Skip != "" {
				return fs.SkipDir // only the directory being built is copied
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
		return false, fmt.Errorf("read the repository: %w", err)
	}
	if o.Overlay != nil {
		for rel, data := range o.Overlay {
			if err := write(path.Join(dir, rel), data); err != nil {
				return false, err
			}
		}
		return shared, nil
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
		return false, fmt.Errorf("%s: %w", dir, ErrNoDir)
	}
	return shared, err
}
