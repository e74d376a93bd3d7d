//go:build !noargocdapi

package main

import (
	"github.com/offshoot-dev/offshoot/internal/argocd"
	"github.com/offshoot-dev/offshoot/internal/argocd/argoapi"
)

// hasArgoAPI says whether this binary carries Argo CD's API client.
const hasArgoAPI = true

// newArgoClient connects to the Argo CD API server.
func newArgoClient(o argocd.Options) (argocd.Client, error) {
	c, err := argoapi.New(o)
	if err != nil {
		return nil, err
	}
	return c, nil
}
