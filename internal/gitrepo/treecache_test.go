package gitrepo

import (
	"fmt"
	"io/fs"
	"testing"
)

// A directory large enough for the tree cache (envs/ with one entry per
// environment) read and rewritten event after event by one long-lived Repo
// stays exactly what git sees — also when another writer moves the remote
// between events (the cached tree of a stale head must not be reused as
// the new base), and for every read through Snapshot.
func TestLargeDirectoryThroughTheTreeCache(t *testing.T) {
	rm := newRemote(t)
	const n = 3 * treeCacheMinEntries
	want := map[string]string{"offshoot.yaml": "v1\n"}
	seed := &Change{Message: "seed", Dirs: map[string]map[string][]byte{}, Files: files("offshoot.yaml", "v1\n")}
	for i := 0; i < n; i++ {
		d := fmt.Sprintf("envs/e%03d", i)
		seed.Dirs[d] = files("env.yaml", fmt.Sprintf("sha: %d-0\n", i))
		want[d+"/env.yaml"] = fmt.Sprintf("sha: %d-0\n", i)
	}
	rm.seed(t, seed)
	r := rm.open(t)
	other := rm.open(t)
	for step := 1; step <= 6; step++ {
		i := step * 7
		d := fmt.Sprintf("envs/e%03d", i)
		var c *Change
		switch step % 3 {
		case 0: // a removal
			c = &Change{Message: fmt.Sprintf("rm %d", i), Dirs: map[string]map[string][]byte{d: nil}}
			delete(want, d+"/env.yaml")
		default:
			c = &Change{Message: fmt.Sprintf("sha %d", i), Dirs: map[string]map[string][]byte{d: files("env.yaml", fmt.Sprintf("sha: %d-%d\n", i, step))}}
			want[d+"/env.yaml"] = fmt.Sprintf("sha: %d-%d\n", i, step)
		}
		// What the change function sees is the current head, read through
		// the cache.
		res, err := r.Update(t.Context(), func(files fs.FS, _ string) (*Change, error) {
			got, err := fs.ReadFile(files, "envs/e001/env.yaml")
			if err != nil || string(got) != want["envs/e001/env.yaml"] {
				return nil, fmt.Errorf("envs/e001/env.yaml = %q, %v; want %q", got, err, want["envs/e001/env.yaml"])
			}
			return c, nil
		}, UpdateOptions{})
		if err != nil || !res.Changed {
			t.Fatalf("step %d: %+v, %v", step, res, err)
		}
		// Another writer moves the remote: r's next update is optimistic on
		// a stale head, conflicts, refetches and rebuilds on the new one.
		od := fmt.Sprintf("envs/x%03d", step)
		mustUpdate(t, other, &Change{Message: "other " + od, Dirs: map[string]map[string][]byte{od: files("env.yaml", "other\n")}})
		want[od+"/env.yaml"] = "other\n"
		assertFiles(t, rm.files(t), want)
	}
	snap, _, err := r.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(snap, "envs")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(entries); got != n-2+6 {
		t.Fatalf("envs/ has %d entries, want %d", got, n-2+6)
	}
	if len(r.trees.trees) == 0 {
		t.Fatal("the tree cache was never used: the test does not exercise it")
	}
	rm.fsck(t)
	rm.linear(t)
}

// A long-lived Repo asks for the receive-pack advertisement once: later
// pushes POST their pack straight away (smart HTTP is stateless; the update
// command's old value is the lease). When a push gets no answer, the
// remembered capabilities are dropped and the next push asks again.
func TestPushSkipsTheAdvertisementOnceKnown(t *testing.T) {
	rm := newRemote(t)
	rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	r := rm.open(t)
	step := func(i int) Result {
		t.Helper()
		return mustUpdate(t, r, &Change{Message: fmt.Sprint(i), Files: files("n.txt", fmt.Sprint(i))})
	}
	step(1)
	adverts, pushes := rm.srv.PushAdverts(), rm.srv.Pushes()
	for i := 2; i <= 4; i++ {
		if res := step(i); !res.Changed || res.Commit != rm.head(t) {
			t.Fatalf("push %d: %+v, server at %s", i, res, rm.head(t))
		}
	}
	if got := rm.srv.PushAdverts() - adverts; got != 0 {
		t.Errorf("%d receive-pack advertisements for 3 pushes, want 0", got)
	}
	if got := rm.srv.Pushes() - pushes; got != 3 {
		t.Errorf("%d pushes, want 3", got)
	}
	// The server fails every request: the push fails (retrying once with a
	// fresh advertisement), nothing is committed, and once it is back the
	// capabilities are asked for again.
	rm.srv.SetDown(true)
	_, err := r.Update(t.Context(), constChange(&Change{Message: "5", Files: files("n.txt", "5")}), UpdateOptions{})
	rm.srv.SetDown(false)
	if err == nil {
		t.Fatal("push to a server that is down succeeded")
	}
	adverts = rm.srv.PushAdverts()
	if res := step(6); !res.Changed || res.Commit != rm.head(t) {
		t.Fatalf("after the outage: %+v, server at %s", res, rm.head(t))
	}
	if rm.srv.PushAdverts() == adverts {
		t.Error("the capabilities were not asked for again after a failed push")
	}
	rm.fsck(t)
}
