// Package manifests holds offshoot's cluster-side install YAML: the Argo CD
// AppProject and ApplicationSet that deploy every environment directory of
// the environments repo, and the argocd-cm patch with Lua health checks for
// the CloudNativePG objects environments contain. See README.md.
package manifests

import (
	"embed"
	"io/fs"
)

//go:embed argocd/*.yaml argocd-cm-health.yaml health/*.lua
var files embed.FS

// ArgoCD returns the kustomize base in argocd/ (kustomization.yaml,
// appproject.yaml, applicationset.yaml), rooted at that directory.
func ArgoCD() fs.FS {
	return sub("argocd")
}

// HealthPatch returns argocd-cm-health.yaml, the merge patch for the
// argocd-cm ConfigMap that adds the health checks.
func HealthPatch() []byte {
	b, err := files.ReadFile("argocd-cm-health.yaml")
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	return b
}

// HealthScripts returns the Lua health scripts (health/*.lua), rooted at
// that directory. Each file is named <group>_<Kind>.lua, the suffix of its
// argocd-cm key resource.customizations.health.<group>_<Kind>.
func HealthScripts() fs.FS {
	return sub("health")
}

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // dir is a constant embedded at build time
	}
	return f
}
