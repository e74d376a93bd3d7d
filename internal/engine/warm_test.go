package engine_test

import (
	"context"
	"testing"

	"github.com/offshoot-dev/offshoot/generator"
)

// Warm builds an existing environment and commits nothing; with no
// environment yet it has nothing to build.
func TestWarm(t *testing.T) {
	eng := batchEngine(t, nil)
	ctx := context.Background()
	if env, err := eng.Warm(ctx); err != nil || env != "" {
		t.Fatalf("warm with no environments: %q, %v", env, err)
	}
	if _, err := apply(eng, generator.Request{Op: generator.OpSync, Branch: "main", SHA: "1111111"}); err != nil {
		t.Fatal(err)
	}
	_, before, err := eng.Repo.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env, err := eng.Warm(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := eng.List(ctx)
	if err != nil || len(list) != 1 || env != list[0].Name {
		t.Fatalf("warmed %q; environments %v, %v", env, list, err)
	}
	if _, after, err := eng.Repo.Snapshot(ctx); err != nil || after != before {
		t.Fatalf("head moved by the warm-up: %v → %v (%v)", before, after, err)
	}
}
