package generator

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/offshoot-dev/offshoot/internal/kustomize"
)

// BuildEnv builds an environment's directory with kustomize as Argo CD will
// (internal/kustomize), over repo; files replaces the directory's files
// (nil: the repo's). Other environments are not read.
func BuildEnv(repo fs.FS, dir string, files map[string][]byte) ([]byte, []map[string]any, error) {
	out, objs, err := kustomize.Build(repo, dir, kustomize.Options{Skip: EnvsDir, Overlay: files})
	return out, objs, envErr(dir, err)
}

// checkBuild is BuildEnv for the checks: whole objects only for the kinds
// checkBuilt inspects.
func checkBuild(repo fs.FS, dir string, files map[string][]byte, wantYAML bool) ([]byte, []map[string]any, error) {
	out, objs, err := kustomize.Build(repo, dir, kustomize.Options{Skip: EnvsDir, Overlay: files, Brief: !wantYAML, Full: []string{"Cluster", "Deployment"}})
	return out, objs, envErr(dir, err)
}

func envErr(dir string, err error) error {
	if errors.Is(err, kustomize.ErrNoDir) {
		return fmt.Errorf("%s: %w", dir, ErrNoEnv)
	}
	return err
}

// Validator validates plans while more are being made: a batch hands each
// plan over as soon as PlanUnchecked returns it, so the builds (most of a batch's
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
		v.base, v.err = kustomize.Snapshot(v.repo, EnvsDir) // the workers see it through the channel
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
