package generator

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/clone"
)

// Layout of the environments repo.
const (
	EnvsDir  = "envs"
	EnvFile  = "env.yaml"
	EnvKind  = "Environment"
	AppLabel = "offshoot.dev/env"
)

// Environment is the metadata file envs/<name>/env.yaml: the raw branch
// name, its parent, the deployed SHA and the database incarnation. The
// Argo CD ApplicationSet reads it (Git files generator) to label each
// Application, and offshoot reads it to list environments without building
// anything. Fields without omitempty are always written, because the
// ApplicationSet template uses missingkey=error.
type Environment struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Branch     string `json:"branch"`
	Parent     string `json:"parent"`
	ParentEnv  string `json:"parentEnv"`
	// ParentReason says how the parent was chosen, when it was detected.
	ParentReason string    `json:"parentReason,omitempty"`
	SHA          string    `json:"sha"`
	Namespace    string    `json:"namespace"`
	URL          string    `json:"url"`
	Protected    bool      `json:"protected"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	Database     Database  `json:"database"`
}

// Database is the environment's current database incarnation.
type Database struct {
	Cluster string `json:"cluster"`
	// Generation counts incarnations since creation (refresh adds one).
	Generation int `json:"generation"`
	// Incarnation is unique per creation or refresh.
	Incarnation string `json:"incarnation"`
	// ServerName is this incarnation's archive folder.
	ServerName string `json:"serverName"`
	// Source is the parent archive it was cloned from (nil for the root).
	Source *clone.Source `json:"source,omitempty"`
	// ClonedAt is when this incarnation was created.
	ClonedAt time.Time `json:"clonedAt"`
}

// EnvDir is the directory of an environment in the repo.
func EnvDir(name string) string { return path.Join(EnvsDir, name) }

// ErrNoEnv is returned when an environment does not exist.
var ErrNoEnv = errors.New("no such environment")

// ReadEnv reads envs/<name>/env.yaml.
func ReadEnv(fsys fs.FS, name string) (*Environment, error) {
	p := path.Join(EnvDir(name), EnvFile)
	data, err := fs.ReadFile(fsys, p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoEnv, name)
	}
	if err != nil {
		return nil, err
	}
	var e Environment
	if err := yaml.UnmarshalStrict(data, &e); err != nil {
		return nil, fmt.Errorf("%s: %s", p, cleanYAMLError(err))
	}
	if e.Kind != EnvKind || e.Name != name {
		return nil, fmt.Errorf("%s: not the metadata of environment %q (kind %q, name %q)", p, name, e.Kind, e.Name)
	}
	return &e, nil
}

// ListEnvs reads the metadata of every environment, sorted by name.
func ListEnvs(fsys fs.FS) ([]*Environment, error) {
	entries, err := fs.ReadDir(fsys, EnvsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Environment
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		env, err := ReadEnv(fsys, e.Name())
		if errors.Is(err, ErrNoEnv) {
			continue // a directory without metadata is not an environment
		}
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ChildrenOf returns the sorted branches of the environments whose parent
// is the environment name. Every env.yaml is read, but only those that
// mention the name as parentEnv are decoded, so it costs a blob read per
// environment rather than a YAML decode.
func ChildrenOf(fsys fs.FS, name string) ([]string, error) {
	entries, err := fs.ReadDir(fsys, EnvsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	plain, quoted := []byte("parentEnv: "+name+"\n"), []byte("parentEnv: \""+name+"\"\n")
	var children []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		data, err := fs.ReadFile(fsys, path.Join(EnvsDir, e.Name(), EnvFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !bytes.Contains(data, plain) && !bytes.Contains(data, quoted) {
			continue
		}
		env, err := ReadEnv(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		if env.ParentEnv == name {
			children = append(children, env.Branch)
		}
	}
	sort.Strings(children)
	return children, nil
}

// FindEnv finds the environment of a raw branch name.
func FindEnv(fsys fs.FS, branch string) (*Environment, error) {
	name, err := EnvName(branch)
	if err != nil {
		return nil, err
	}
	e, err := ReadEnv(fsys, name)
	if err != nil {
		if errors.Is(err, ErrNoEnv) {
			return nil, fmt.Errorf("%w for branch %q", ErrNoEnv, branch)
		}
		return nil, err
	}
	if e.Branch != branch {
		return nil, fmt.Errorf("environment %q belongs to branch %q, not %q", name, e.Branch, branch)
	}
	return e, nil
}

// Lineage returns the chain from the root down to env, following parent
// links; it fails on a loop, a missing ancestor or a chain deeper than 64.
func Lineage(fsys fs.FS, env *Environment) ([]*Environment, error) {
	chain := []*Environment{env}
	seen := map[string]bool{env.Name: true}
	cur := env
	for cur.ParentEnv != "" {
		if len(chain) > 64 {
			return nil, fmt.Errorf("parent chain of %q is deeper than 64 environments", env.Branch)
		}
		if seen[cur.ParentEnv] {
			return nil, fmt.Errorf("parent chain of %q loops: %s", env.Branch, chainString(append(chain, &Environment{Branch: cur.Parent})))
		}
		p, err := ReadEnv(fsys, cur.ParentEnv)
		if err != nil {
			return nil, fmt.Errorf("parent chain of %q is broken at %q: %w", env.Branch, cur.Parent, err)
		}
		seen[p.Name] = true
		chain = append(chain, p)
		cur = p
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, nil
}

func chainString(chain []*Environment) string {
	s := ""
	for i, e := range chain {
		if i > 0 {
			s += " → "
		}
		s += e.Branch
	}
	return s
}
