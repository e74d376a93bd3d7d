package crdschema

import (
	"strings"
	"testing"
)

// Each of the three steps catches what the others do not.
func TestValidateBuiltin(t *testing.T) {
	job := func() map[string]any {
		return map[string]any{
			"apiVersion": "batch/v1", "kind": "Job",
			"metadata": map[string]any{"name": "g"},
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"restartPolicy": "Never",
				"containers":    []any{map[string]any{"name": "c", "image": "i"}},
			}}},
		}
	}
	if err := ValidateBuiltin(job()); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		obj  map[string]any
		want string
	}{
		"unknown field (strict decoding)": {func() map[string]any {
			j := job()
			j["spec"].(map[string]any)["parallelismm"] = 1.0
			return j
		}(), "unknown field"},
		"missing required roleRef (OpenAPI)": {map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
			"metadata": map[string]any{"name": "b"},
		}, ".roleRef in body is required"},
		"restartPolicy Always (apiserver rule)": {func() map[string]any {
			j := job()
			j["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["restartPolicy"] = "Always"
			return j
		}(), "restartPolicy"},
	} {
		if err := ValidateBuiltin(tc.obj); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error about %s, got %v", name, tc.want, err)
		}
	}
	if IsBuiltin("postgresql.cnpg.io/v1", "Cluster") || !IsBuiltin("batch/v1", "Job") {
		t.Error("IsBuiltin")
	}
}
