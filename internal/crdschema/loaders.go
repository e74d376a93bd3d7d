package crdschema

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
)

// Pinned upstream releases whose CRDs the convenience loaders use.
const (
	CNPGModule         = "github.com/cloudnative-pg/cloudnative-pg"
	CNPGVersion        = "v1.30.0"
	BarmanCloudModule  = "github.com/cloudnative-pg/plugin-barman-cloud"
	BarmanCloudVersion = "v0.15.0"
	ArgoCDModule       = "github.com/argoproj/argo-cd/v2"
	ArgoCDVersion      = "v2.14.21"
	cnpgCRDDir         = "config/crd/bases"
	barmanCloudCRDDir  = "config/crd/bases"
	argoCDCRDDir       = "manifests/crds"
)

// ArgoCDCRDFiles are the CRD files loaded from ArgoCDCRDDir of the Argo CD module.
var ArgoCDCRDFiles = []string{"application-crd.yaml", "applicationset-crd.yaml", "appproject-crd.yaml"}

type memo struct {
	once sync.Once
	v    *Validator
	err  error
}

var cnpgMemo, argoCDMemo memo

// CNPG returns a Validator for the CloudNativePG v1.30.0 CRDs
// (postgresql.cnpg.io: Cluster, ScheduledBackup, Backup, Pooler, Database, ...)
// plus the Barman Cloud plugin v0.15.0 CRD (barmancloud.cnpg.io ObjectStore),
// read from the module zips (fetched with ModuleDir). It is built once per
// test binary. The test is skipped only if the go command is missing; any
// other failure fails it.
func CNPG(t testing.TB) *Validator {
	t.Helper()
	return cnpgMemo.get(t, func() (*Validator, error) {
		cnpg, err := ModuleDir(CNPGModule, CNPGVersion)
		if err != nil {
			return nil, err
		}
		barman, err := ModuleDir(BarmanCloudModule, BarmanCloudVersion)
		if err != nil {
			return nil, err
		}
		return LoadDirs(filepath.Join(cnpg, cnpgCRDDir), filepath.Join(barman, barmanCloudCRDDir))
	})
}

// ArgoCD returns a Validator for the Argo CD v2.14.21 CRDs (argoproj.io
// Application, ApplicationSet, AppProject), read from the module zip. It is
// built once per test binary. The test is skipped only if the go command is
// missing; any other failure fails it.
func ArgoCD(t testing.TB) *Validator {
	t.Helper()
	return argoCDMemo.get(t, func() (*Validator, error) {
		dir, err := ModuleDir(ArgoCDModule, ArgoCDVersion)
		if err != nil {
			return nil, err
		}
		files := make([]string, len(ArgoCDCRDFiles))
		for i, f := range ArgoCDCRDFiles {
			files[i] = filepath.Join(dir, argoCDCRDDir, f)
		}
		return Load(files...)
	})
}

func (m *memo) get(t testing.TB, load func() (*Validator, error)) *Validator {
	t.Helper()
	m.once.Do(func() { m.v, m.err = load() })
	if m.err != nil {
		if errors.Is(m.err, ErrGoNotFound) {
			t.Skipf("crdschema: %v", m.err)
			return nil
		}
		t.Fatalf("crdschema: %v", m.err)
		return nil
	}
	return m.v
}
