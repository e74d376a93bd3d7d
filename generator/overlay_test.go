package generator

import (
	"io/fs"
	"testing"
	"testing/fstest"
)

func TestOverlay(t *testing.T) {
	base := fstest.MapFS{
		"offshoot.yaml":        {Data: []byte("cfg")},
		"base/app/a.yaml":      {Data: []byte("a")},
		"envs/old/env.yaml":    {Data: []byte("old")},
		"envs/keep/env.yaml":   {Data: []byte("keep")},
		"envs/keep/extra.yaml": {Data: []byte("x")},
	}
	o := &Overlay{Base: base}
	o.Apply(map[string]map[string][]byte{
		"envs/old":  nil,
		"envs/new":  {"env.yaml": []byte("new"), "sub/f.yaml": []byte("f")},
		"envs/keep": {"env.yaml": []byte("keep2")},
	})
	if err := fstest.TestFS(o, "offshoot.yaml", "base/app/a.yaml", "envs/new/env.yaml", "envs/new/sub/f.yaml", "envs/keep/env.yaml"); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"envs/new/env.yaml": "new", "envs/keep/env.yaml": "keep2", "offshoot.yaml": "cfg"} {
		if got, err := fs.ReadFile(o, p); err != nil || string(got) != want {
			t.Fatalf("%s = %q, %v", p, got, err)
		}
	}
	for _, gone := range []string{"envs/old/env.yaml", "envs/keep/extra.yaml", "envs/old"} {
		if _, err := fs.Stat(o, gone); err == nil {
			t.Fatalf("%s must be gone", gone)
		}
	}
	entries, err := fs.ReadDir(o, "envs")
	if err != nil || len(entries) != 2 || entries[0].Name() != "keep" || entries[1].Name() != "new" {
		t.Fatalf("envs = %v, %v", entries, err)
	}
	// A new top-level tree appears in the root listing.
	o2 := &Overlay{Base: fstest.MapFS{"offshoot.yaml": {Data: []byte("c")}}}
	o2.Apply(map[string]map[string][]byte{"envs/a": {"env.yaml": []byte("a")}})
	if err := fstest.TestFS(o2, "offshoot.yaml", "envs/a/env.yaml"); err != nil {
		t.Fatal(err)
	}
}
