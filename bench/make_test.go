package bench

import (
	"testing"
	"testing/fstest"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
)

// BenchmarkMakeNewSHA is the planning and validation part of a new-SHA
// event alone — render, compare, in-process kustomize build, checks — on
// an in-memory repo: no git at all. It is the floor of the event path.
func BenchmarkMakeNewSHA(b *testing.B) {
	cfg, scaffold, err := Config()
	if err != nil {
		b.Fatal(err)
	}
	repo := fstest.MapFS{}
	for p, data := range scaffold {
		repo[p] = &fstest.MapFile{Data: data}
	}
	root := NewEnv(cfg, Root, nil, SHA(0, 0), Epoch)
	for _, env := range []*generator.Environment{root, NewEnv(cfg, Branch(1), root, SHA(1, 0), Epoch)} {
		files, err := generator.Render(cfg, env)
		if err != nil {
			b.Fatal(err)
		}
		for rel, data := range files {
			repo[generator.EnvDir(env.Name)+"/"+rel] = &fstest.MapFile{Data: data}
		}
	}
	now := time.Now()
	k := 0
	for b.Loop() {
		k++
		p, err := generator.PlanChecked(cfg, repo, generator.Request{Op: generator.OpSync, Branch: Branch(1), SHA: SHA(1, k), Now: now})
		if err != nil || p.UpToDate {
			b.Fatal(err, p.UpToDate)
		}
	}
}
