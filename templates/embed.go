// Package templates holds the files offshoot init scaffolds into a new
// environments repo: offshoot.yaml with every field commented, and the app
// base (Deployment, Service, Ingress) that every environment's overlay
// builds on. Users edit them after init; offshoot never rewrites them.
package templates

import (
	"embed"
	"io/fs"
)

//go:embed all:envrepo
var files embed.FS

// EnvRepo is the tree of a new environments repo.
func EnvRepo() fs.FS {
	sub, err := fs.Sub(files, "envrepo")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}
