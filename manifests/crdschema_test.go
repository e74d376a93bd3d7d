package manifests

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offshoot-dev/offshoot/internal/crdschema"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestArgoCDObjectsMatchCRDs validates the AppProject and ApplicationSet,
// as written and as built by kustomize (base and example overlay), against
// the Argo CD v2.14.21 CRDs, as the apiserver would with strict field
// validation.
func TestArgoCDObjectsMatchCRDs(t *testing.T) {
	v := crdschema.ArgoCD(t)
	for _, name := range []string{"appproject.yaml", "applicationset.yaml"} {
		b, err := fs.ReadFile(ArgoCD(), name)
		if err != nil {
			t.Fatal(err)
		}
		skipped, err := v.ValidateYAML(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(skipped) != 0 {
			t.Errorf("%s: not validated: %v", name, skipped)
		}
	}
	for dir, fsys := range map[string]filesys.FileSystem{
		"/argocd":          embeddedBase(t),
		"examples/overlay": filesys.MakeFsOnDisk(),
	} {
		for kind, obj := range kustomizeBuild(t, fsys, dir) {
			if err := v.Validate(obj); err != nil {
				t.Errorf("kustomize build %s: %s: %v", dir, kind, err)
			}
		}
	}
}

// TestRenderedApplicationsMatchCRD validates the Applications the
// ApplicationSet renders for the sample envs and for the generator's golden
// env.yaml files against the Application CRD.
func TestRenderedApplicationsMatchCRD(t *testing.T) {
	v := crdschema.ArgoCD(t)
	appset := readArgoCD(t, "applicationset.yaml")
	envFiles, _ := filepath.Glob(filepath.Join("testdata", "envs", "*", "env.yaml"))
	golden, _ := filepath.Glob(filepath.Join("..", "generator", "testdata", "golden", "*", "env.yaml"))
	if len(envFiles) == 0 {
		t.Fatal("no testdata/envs/*/env.yaml")
	}
	for _, f := range append(envFiles, golden...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := yamlToMap(t, b)["name"].(string)
		params := gitFileParams(t, "envs/"+name+"/env.yaml", b)
		app, err := renderApplication(appset, "argocd", params)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if err := v.Validate(jsonRoundTrip(t, app)); err != nil {
			t.Errorf("%s: rendered Application: %v", f, err)
		}
	}
}

// TestHealthFixturesMatchCRDs keeps the objects the Lua health tests run on
// realistic: their spec must be valid for CloudNativePG 1.30 and the
// barman-cloud plugin v0.15.0 (status is dropped by the status subresource,
// as on create).
func TestHealthFixturesMatchCRDs(t *testing.T) {
	v := crdschema.CNPG(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "health", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no health fixtures")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		skipped, err := v.ValidateYAML(b)
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if len(skipped) != 0 {
			t.Errorf("%s: not validated: %s", f, strings.Join(skipped, ", "))
		}
	}
}
