package generator

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sync"
	"testing/fstest"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/yaml"
)

// buildMu orders kustomize builds against the one thing in kustomize that
// is not safe for concurrent builds: a kustomization that changes its
// global OpenAPI schema (an `openapi:` or `crds:` field). Builds of
// kustomizations without those — offshoot's overlays and a base without
// them — share the read lock and run in parallel (Validator); any other
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

// Build runs an in-process kustomize build of dir over a copy of repo in
// memory, with plugins off and loading restricted to each kustomization's
// root: the build can read nothing but the repository's own files.
// Directories under envs/ other than dir are left out of the copy, so the
// cost does not grow with the number of environments. overlay replaces the
// files of dir (nil: use the repo's).
func Build(repo fs.FS, dir string, overlay map[string][]byte) (yamlOut []byte, objs []map[string]any, err error) {
	return build(repo, dir, overlay, true)
}

// build is Build; without wantYAML it skips serialising the output, and it
// returns full objects only for the kinds checkBuilt inspects (Cluster,
// Deployment) — for the others kind, name and namespace.
func build(repo fs.FS, dir string, overlay map[string][]byte, wantYAML bool) (yamlOut []byte, objs []map[string]any, err error) {
	mem := filesys.MakeFsInMemory()
	shared, err := copyRepo(repo, mem, dir, overlay)
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
	if wantYAML {
		if yamlOut, err = rm.AsYaml(); err != nil {
			return nil, nil, &BuildError{Dir: dir, Err: err}
		}
	}
	for _, r := range rm.Resources() {
		kind := r.GetKind()
		if !wantYAML && kind != "Cluster" && kind != "Deployment" {
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

// Validator validates plans while more are being made: a batch hands each
// plan over as soon as Prepare returns it, so the builds (most of a batch's
// cost) overlap the planning of the next ones. Builds read one snapshot of
// repo's shared files (everything outside envs/, where plans never write)
// and each plan's own files; the snapshot is read when the first plan
// arrives (a batch with nothing to build reads nothing).
type Validator struct {
	repo  fs.FS
	base  fs.FS
	err   error // reading the snapshot failed: every plan gets it
	errs  []error
	next  chan int
	plans []*Plan
	wg    sync.WaitGroup
}

// NewValidator starts up to workers goroutines that will validate up to n
// plans (indexes 0..n-1) given to Add.
func NewValidator(repo fs.FS, n, workers int) *Validator {
	v := &Validator{repo: repo, errs: make([]error, n), plans: make([]*Plan, n), next: make(chan int, n)}
	if workers < 1 {
		workers = 1
	}
	for w := 0; w < workers && w < n; w++ {
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			for i := range v.next {
				if v.err != nil {
					v.errs[i] = v.err
					continue
				}
				v.errs[i] = v.plans[i].Validate(v.base)
			}
		}()
	}
	return v
}

// Add queues plan i (nil, or one without pending validation, is skipped).
// It never blocks; it is called from one goroutine.
func (v *Validator) Add(i int, p *Plan) {
	if p == nil || p.pending == nil {
		return
	}
	if v.base == nil && v.err == nil {
		v.base, v.err = snapshotShared(v.repo) // the workers see it through the channel
	}
	v.plans[i] = p
	v.next <- i
}

// Wait validates what was added and returns each plan's error by index.
func (v *Validator) Wait() []error {
	close(v.next)
	v.wg.Wait()
	return v.errs
}

// snapshotShared reads every file outside envs/ into memory: an immutable
// view that concurrent builds can share.
func snapshotShared(repo fs.FS) (fs.FS, error) {
	snap := fstest.MapFS{}
	err := fs.WalkDir(repo, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == EnvsDir {
				return fs.SkipDir
			}
			return nil
		}
		data, err := fs.ReadFile(repo, p)
		if err != nil {
			return err
		}
		snap[p] = &fstest.MapFile{Data: data}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read environments repo: %w", err)
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
func copyRepo(repo fs.FS, mem filesys.FileSystem, dir string, overlay map[string][]byte) (shared bool, err error) {
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
		return false, fmt.Errorf("read environments repo: %w", err)
	}
	if overlay != nil {
		for rel, data := range overlay {
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
		return false, fmt.Errorf("%s: %w", dir, ErrNoEnv)
	}
	return shared, err
}
