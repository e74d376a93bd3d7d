package manifests

import (
	"io/fs"
	"path"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizeBuild runs an in-process `kustomize build dir` (what
// `kubectl apply -k dir` applies) and returns the objects by kind.
func kustomizeBuild(t *testing.T, fsys filesys.FileSystem, dir string) map[string]map[string]any {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	byKind := map[string]map[string]any{}
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		kind, _ := m["kind"].(string)
		if _, dup := byKind[kind]; dup {
			t.Fatalf("%s: two %s objects", dir, kind)
		}
		byKind[kind] = m
	}
	return byKind
}

// embeddedBase copies ArgoCD() into an in-memory file system at /argocd,
// which also proves the embedded copy is a complete kustomization.
func embeddedBase(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	if err := mem.MkdirAll("/argocd"); err != nil {
		t.Fatal(err)
	}
	err := fs.WalkDir(ArgoCD(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(ArgoCD(), p)
		if err != nil {
			return err
		}
		return mem.WriteFile(path.Join("/argocd", p), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

func TestKustomizeBase(t *testing.T) {
	objs := kustomizeBuild(t, embeddedBase(t), "/argocd")
	if len(objs) != 2 || objs["AppProject"] == nil || objs["ApplicationSet"] == nil {
		t.Fatalf("built kinds %v, want AppProject and ApplicationSet", keys(objs))
	}
	for kind, o := range objs {
		if ns := get(o, "metadata", "namespace"); ns != "argocd" {
			t.Errorf("%s namespace %v, want argocd", kind, ns)
		}
	}
	// kustomize must leave the Go templates alone.
	appset := objs["ApplicationSet"]
	raw := readArgoCD(t, "applicationset.yaml")
	if got, want := get(appset, "spec", "templatePatch"), get(raw, "spec", "templatePatch"); got != want {
		t.Errorf("templatePatch changed by kustomize:\n%v\nwant\n%v", got, want)
	}
	if got := get(appset, "spec", "template", "spec", "destination", "namespace"); got != "{{.namespace}}" {
		t.Errorf("destination.namespace %v changed by kustomize", got)
	}
}

// TestKustomizeExampleOverlay builds examples/overlay (the README's
// overlay) and checks that no placeholder survives and that the repo URL
// and revision stay consistent across AppProject, generator and source.
func TestKustomizeExampleOverlay(t *testing.T) {
	objs := kustomizeBuild(t, filesys.MakeFsOnDisk(), "examples/overlay")
	appset, project := objs["ApplicationSet"], objs["AppProject"]
	if appset == nil || project == nil {
		t.Fatalf("built kinds %v", keys(objs))
	}
	for _, s := range append(collectStrings(appset), collectStrings(project)...) {
		if strings.Contains(s, "git.example.com") || strings.HasPrefix(s, "shop-") {
			t.Errorf("placeholder left after overlay: %q", s)
		}
	}
	const repo = "https://git.acme.dev/platform/acme-environments.git"
	for _, p := range [][]string{
		{"spec", "generators", "0", "git", "repoURL"},
		{"spec", "template", "spec", "source", "repoURL"},
	} {
		if got := get(appset, p...); got != repo {
			t.Errorf("ApplicationSet %s = %v, want %s", strings.Join(p, "."), got, repo)
		}
	}
	if got := get(project, "spec", "sourceRepos", "0"); got != repo {
		t.Errorf("AppProject sourceRepos[0] = %v", got)
	}
	if a, b := get(appset, "spec", "generators", "0", "git", "revision"), get(appset, "spec", "template", "spec", "source", "targetRevision"); a != "environments" || b != "environments" {
		t.Errorf("revision %v / targetRevision %v, want environments", a, b)
	}
	if got := get(project, "spec", "destinations", "0", "namespace"); got != "acme-*" {
		t.Errorf("AppProject destination namespace %v", got)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
