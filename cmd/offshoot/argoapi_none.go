//go:build noargocdapi

package main

import "github.com/offshoot-dev/offshoot/internal/argocd"

// hasArgoAPI says whether this binary carries Argo CD's API client: builds
// with -tags noargocdapi (the server image) leave it out, and with it Argo
// CD's Kubernetes dependencies (~70 MB of resident memory).
const hasArgoAPI = false

func newArgoClient(argocd.Options) (argocd.Client, error) { return nil, errNoArgoAPI }
