package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"github.com/offshoot-dev/offshoot/internal/gitrepo"
	"github.com/offshoot-dev/offshoot/internal/gitserver"
)

func batchEngine(t *testing.T, edit func(map[string][]byte)) *engine.Engine {
	t.Helper()
	srv, err := gitserver.Start(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	url, _ := srv.CreateBare("envs")
	repo, err := gitrepo.Open(context.Background(), gitrepo.Options{Location: url, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	eng := &engine.Engine{Repo: repo}
	files, _ := generator.Scaffold(generator.InitOptions{})
	if edit != nil {
		edit(files)
	}
	if _, err := eng.Init(context.Background(), files); err != nil {
		t.Fatal(err)
	}
	return eng
}

// A batch's builds run in parallel; every plan is validated, each child
// sees its parent from the same batch, and it all lands as one commit.
func TestBatchValidatesEveryPlan(t *testing.T) {
	eng := batchEngine(t, nil)
	ctx := context.Background()
	reqs := []generator.Request{{Op: generator.OpSync, Branch: "main", SHA: "1111111"}}
	for i := 0; i < 7; i++ {
		parent := "main"
		if i%2 == 1 {
			parent = fmt.Sprintf("feature_%d", i-1)
		}
		reqs = append(reqs, generator.Request{Op: generator.OpSync, Branch: fmt.Sprintf("feature_%d", i), Parent: parent, SHA: fmt.Sprintf("%07x", 0x2000000+i)})
	}
	reqs = append(reqs, generator.Request{Op: generator.OpSync, Branch: "feature_0", SHA: "3333333"}) // a new SHA in the same batch
	out, err := handle(eng, reqs...)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Changed || out.Commit == "" {
		t.Fatalf("nothing committed: %+v", out)
	}
	for i, it := range out.Items {
		if it.Err != nil || it.Plan == nil || !it.Plan.Validated() {
			t.Fatalf("item %d (%s): err %v, plan %+v", i, it.Request.Branch, it.Err, it.Plan)
		}
	}
	list, err := eng.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 8 {
		t.Fatalf("%d environments after the batch, want 8", len(list))
	}
	for _, e := range list {
		if e.Branch == "feature_0" && e.SHA != "3333333" {
			t.Fatalf("feature_0 at %s, want the batch's last SHA", e.SHA)
		}
	}
}

// When a build in a batch fails, the batch is planned again request by
// request: the refused parent is refused for its build, and its child —
// planned on top of it in the parallel pass — is refused because its parent
// has no environment, as if the events had come one by one. Nothing is
// committed.
func TestBatchFailedValidationIsReplannedOneByOne(t *testing.T) {
	eng := batchEngine(t, func(files map[string][]byte) {
		files["base/app/deployment.yaml"] = []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: other\n")
	})
	out, err := handle(eng, []generator.Request{
		{Op: generator.OpSync, Branch: "main", SHA: "1111111"},
		{Op: generator.OpSync, Branch: "feature_1", Parent: "main", SHA: "2222222"},
	}...)
	if err != nil {
		t.Fatal(err)
	}
	if out.Changed {
		t.Fatalf("a batch of refused requests committed %s", out.Commit)
	}
	if e := out.Items[0].Err; e == nil || !strings.Contains(e.Error(), "Deployment") {
		t.Fatalf("main: %v, want the build check's error", e)
	}
	var ue *generator.UsageError
	if e := out.Items[1].Err; !errors.As(e, &ue) || !strings.Contains(e.Error(), "unknown parent") {
		t.Fatalf("feature_1: %v, want unknown parent", e)
	}
}
