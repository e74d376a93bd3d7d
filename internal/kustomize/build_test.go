package kustomize

import (
	"strings"
	"testing"
	"testing/fstest"

	"sigs.k8s.io/kustomize/kyaml/openapi"
)

func TestChangesGlobalSchema(t *testing.T) {
	for _, c := range []struct {
		path, data string
		want       bool
	}{
		{"base/app/kustomization.yaml", "resources:\n- deployment.yaml\n", false},
		{"base/app/kustomization.yaml", "openapi:\n  path: schema.json\n", true},
		{"base/app/kustomization.yml", "crds:\n- crd.yaml\n", true},
		{"base/app/deployment.yaml", "openapi: {path: x}\n", false},
		{"base/app/kustomization.yaml", "# crds and openapi are only mentioned\nresources: []\n", false},
	} {
		if got := changesGlobalSchema(c.path, []byte(c.data)); got != c.want {
			t.Errorf("%s %q: %v, want %v", c.path, c.data, got, c.want)
		}
	}
}

// A kustomization with its own OpenAPI schema is built alone, and the
// schema does not outlive its build: kyaml would otherwise keep it for
// every later build in the process.
func TestCustomSchemaDoesNotLeak(t *testing.T) {
	repo := fstest.MapFS{
		"x/kustomization.yaml": {Data: []byte("openapi:\n  path: schema.json\nresources:\n- cm.yaml\n")},
		"x/schema.json":        {Data: []byte(`{"definitions":{}}`)},
		"x/cm.yaml":            {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")},
	}
	want := openapi.GetSchemaVersion()
	out, _, err := Build(repo, "x", Options{})
	if err != nil || !strings.Contains(string(out), "name: c") {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if got := openapi.GetSchemaVersion(); got != want {
		t.Fatalf("schema after a build with its own: %q, want %q", got, want)
	}
}
