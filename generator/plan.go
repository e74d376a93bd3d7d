package generator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"

	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/clone"
)

// Op is what an event asks for.
type Op string

// Operations.
const (
	OpSync    Op = "sync"    // create the environment or move it to a new SHA
	OpDelete  Op = "delete"  // remove the environment (never its parent's data)
	OpRefresh Op = "refresh" // re-clone the database from the parent's latest backup
)

// Request is one branch event.
type Request struct {
	Op     Op
	Branch string
	// Parent is the branch it was cut from; needed to create a non-root env.
	Parent string
	// ParentReason says how the parent was chosen (recorded in metadata).
	ParentReason string
	// KeepParent: when the environment exists, Parent is only a hint and
	// its recorded parent stays (webhooks: a PR's base may differ).
	KeepParent bool
	// SHA is the app commit to deploy (sync).
	SHA string
	// At is a point in time to recover the parent's data to (create, refresh).
	At *time.Time
	// Now stamps creation and incarnations.
	Now time.Time
	// WantBuilt fills Plan.Built with the kustomize output (pull-request
	// bodies); the build and its checks run either way.
	WantBuilt bool
}

// Plan is what a request does to the environments repo.
type Plan struct {
	Op       Op
	Env      *Environment // the environment after the change (before, for delete)
	Previous *Environment // nil when the environment is new
	// Dirs: each env directory's complete new content; nil removes it.
	Dirs map[string]map[string][]byte
	// UpToDate: the repo already holds exactly this; nothing to commit.
	UpToDate bool
	// Message is the commit message.
	Message string
	// Children still depending on a deleted environment.
	Children []string
	// Built is the kustomize output of the environment written (sync,
	// refresh) when the request asked for it (WantBuilt); empty when UpToDate.
	Built []byte

	// pending is the validation PlanUnchecked left to do; nil once validated.
	pending *pendingBuild
}

// pendingBuild is an environment directory still to be built and checked.
type pendingBuild struct {
	cfg      *Config
	env      *Environment
	dir      string
	files    map[string][]byte
	wantYAML bool
}

// UsageError is a request that can never succeed as given.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usage(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

var shaPattern = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// LoadConfig reads and validates offshoot.yaml from the repo.
func LoadConfig(repo fs.FS) (*Config, error) {
	data, err := fs.ReadFile(repo, ConfigFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the environments repo has no %s: run offshoot init first", ConfigFile)
	}
	if err != nil {
		return nil, err
	}
	return ParseConfig(data)
}

// PlanChecked computes the plan of a request against the repo's current files and
// validates it: every environment it writes is built with kustomize and
// checked before anything is committed. It reads only the environments it
// needs (the branch, its ancestors, and for delete the other metadata).
func PlanChecked(cfg *Config, repo fs.FS, req Request) (*Plan, error) {
	p, err := PlanUnchecked(cfg, repo, req)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(repo); err != nil {
		return nil, err
	}
	return p, nil
}

// PlanUnchecked is PlanChecked without the validation: the plan's kustomize build and
// checks are left to Validate or a Validator, and the plan must not be
// committed before one of them succeeded (Validated says so).
func PlanUnchecked(cfg *Config, repo fs.FS, req Request) (*Plan, error) {
	if req.Now.IsZero() {
		return nil, errors.New("request has no time")
	}
	req.Now = req.Now.UTC().Truncate(time.Second)
	name, err := EnvName(req.Branch)
	if err != nil {
		return nil, err
	}
	prev, err := ReadEnv(repo, name)
	if err != nil && !errors.Is(err, ErrNoEnv) {
		return nil, err
	}
	if prev != nil && prev.Branch != req.Branch {
		return nil, fmt.Errorf("environment name %q is already used by branch %q; branch %q cannot have it", name, prev.Branch, req.Branch)
	}
	switch req.Op {
	case OpSync:
		return planSync(cfg, repo, req, name, prev)
	case OpRefresh:
		return planRefresh(cfg, repo, req, prev)
	case OpDelete:
		return planDelete(cfg, repo, req, prev)
	}
	return nil, usage("unknown operation %q", req.Op)
}

func planSync(cfg *Config, repo fs.FS, req Request, name string, prev *Environment) (*Plan, error) {
	if !shaPattern.MatchString(req.SHA) {
		return nil, usage("invalid app commit SHA %q: want 7 to 64 lower-case hex digits", req.SHA)
	}
	if req.Branch == cfg.Branches.Root && req.Parent != "" {
		return nil, usage("%q is the root branch (branches.root in %s); it has no parent", req.Branch, ConfigFile)
	}
	if prev != nil {
		if req.Parent != "" && req.Parent != prev.Parent && !req.KeepParent {
			return nil, usage("environment of %q already exists with parent %q, not %q: delete it first to re-parent it", req.Branch, displayParent(prev.Parent), req.Parent)
		}
		if req.At != nil {
			return nil, usage("environment of %q already exists; a point in time applies when it is created (refresh it to re-clone its data to a point in time)", req.Branch)
		}
		env := *prev
		env.SHA = req.SHA
		env.URL = cfg.URL(env.Name)
		env.Namespace = cfg.Namespace(env.Name)
		env.Protected = cfg.IsProtected(env.Branch)
		msg := fmt.Sprintf("offshoot: %s → %s\n\nBranch: %s\nCommit: %s", req.Branch, ShortSHA(req.SHA), req.Branch, req.SHA)
		return finish(cfg, repo, OpSync, &env, prev, req, msg)
	}
	env := &Environment{
		APIVersion: ConfigAPIVersion,
		Kind:       EnvKind,
		Name:       name,
		Branch:     req.Branch,
		SHA:        req.SHA,
		Namespace:  cfg.Namespace(name),
		URL:        cfg.URL(name),
		Protected:  cfg.IsProtected(req.Branch),
		CreatedAt:  req.Now,
		UpdatedAt:  req.Now,
	}
	var src *clone.Source
	if req.Branch == cfg.Branches.Root {
		if req.At != nil {
			return nil, usage("the root environment starts with a fresh database; a point in time needs a parent")
		}
	} else {
		if req.Parent == "" {
			return nil, usage("environment of %q does not exist yet: name its parent, the branch it was cut from", req.Branch)
		}
		if req.Parent == req.Branch {
			return nil, usage("branch %q cannot be its own parent", req.Branch)
		}
		parent, err := FindEnv(repo, req.Parent)
		if err != nil {
			if errors.Is(err, ErrNoEnv) {
				return nil, usage("unknown parent %q: it has no environment (sync it first)", req.Parent)
			}
			return nil, err
		}
		if _, err := Lineage(repo, parent); err != nil {
			return nil, err
		}
		env.Parent, env.ParentEnv, env.ParentReason = parent.Branch, parent.Name, req.ParentReason
		src = &clone.Source{Env: parent.Name, Branch: parent.Branch, ServerName: parent.Database.ServerName, TargetTime: at(req.At)}
	}
	env.Database = newIncarnation(env, 1, src, req.Now)
	msg := fmt.Sprintf("offshoot: create %s at %s\n\nBranch: %s\nCommit: %s\n%s", req.Branch, ShortSHA(req.SHA), req.Branch, req.SHA, cloneLine(env))
	return finish(cfg, repo, OpSync, env, nil, req, msg)
}

func planRefresh(cfg *Config, repo fs.FS, req Request, prev *Environment) (*Plan, error) {
	if prev == nil {
		return nil, usage("no environment for branch %q to refresh", req.Branch)
	}
	if prev.ParentEnv == "" {
		return nil, usage("%q is the root environment: there is no parent to re-clone its data from", req.Branch)
	}
	parent, err := ReadEnv(repo, prev.ParentEnv)
	if err != nil {
		return nil, fmt.Errorf("parent %q of %q: %w", prev.Parent, req.Branch, err)
	}
	if _, err := Lineage(repo, parent); err != nil {
		return nil, err
	}
	env := *prev
	env.Protected = cfg.IsProtected(env.Branch)
	src := &clone.Source{Env: parent.Name, Branch: parent.Branch, ServerName: parent.Database.ServerName, TargetTime: at(req.At)}
	env.Database = newIncarnation(&env, prev.Database.Generation+1, src, req.Now)
	msg := fmt.Sprintf("offshoot: refresh %s's database from %s\n\nBranch: %s\n%s", req.Branch, parent.Branch, req.Branch, cloneLine(&env))
	return finish(cfg, repo, OpRefresh, &env, prev, req, msg)
}

func planDelete(cfg *Config, repo fs.FS, req Request, prev *Environment) (*Plan, error) {
	if cfg.IsProtected(req.Branch) || (prev != nil && prev.Protected) {
		return nil, usage("branch %q is protected (branches.root/protected in %s): its environment is never deleted by offshoot", req.Branch, ConfigFile)
	}
	if prev == nil {
		return &Plan{Op: OpDelete, UpToDate: true, Env: &Environment{Branch: req.Branch}}, nil
	}
	children, err := ChildrenOf(repo, prev.Name)
	if err != nil {
		return nil, err
	}
	msg := fmt.Sprintf("offshoot: delete %s\n\nBranch: %s\nDatabase %s (archive %s) is removed; %s's data is untouched.",
		req.Branch, req.Branch, prev.Database.Cluster, prev.Database.ServerName, displayParent(prev.Parent))
	return &Plan{
		Op: OpDelete, Env: prev, Previous: prev, Message: msg, Children: children,
		Dirs: map[string]map[string][]byte{EnvDir(prev.Name): nil},
	}, nil
}

// finish renders env and compares it with the repo (ignoring updatedAt);
// the new directory's kustomize build and checks are left pending.
func finish(cfg *Config, repo fs.FS, op Op, env, prev *Environment, req Request, msg string) (*Plan, error) {
	dir := EnvDir(env.Name)
	if err := checkPointInTime(cfg, repo, env, prev, req.Now); err != nil {
		return nil, err
	}
	if prev != nil {
		env.UpdatedAt = prev.UpdatedAt
	}
	files, err := Render(cfg, env)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		if same, err := sameDir(repo, dir, files); err != nil {
			return nil, err
		} else if same {
			// Nothing to commit, so nothing to validate: the directory was
			// validated when it was written (Built stays empty).
			return &Plan{Op: op, Env: env, Previous: prev, UpToDate: true}, nil
		}
		// Only the metadata file carries updatedAt.
		env.UpdatedAt = req.Now
		if files[EnvFile], err = yaml.Marshal(env); err != nil {
			return nil, err
		}
	}
	return &Plan{Op: op, Env: env, Previous: prev, Dirs: map[string]map[string][]byte{dir: files}, Message: msg,
		pending: &pendingBuild{cfg: cfg, env: env, dir: dir, files: files, wantYAML: req.WantBuilt}}, nil
}

// Validated reports whether nothing is left to check before committing p.
func (p *Plan) Validated() bool { return p.pending == nil }

// Validate builds the environment p writes with kustomize over repo (with
// p's files in place) and checks the result: everything in its namespace,
// the app's image, the database archiving only into its own serverName.
func (p *Plan) Validate(repo fs.FS) error {
	if p.pending == nil {
		return nil
	}
	b := p.pending
	out, objs, err := checkBuild(repo, b.dir, b.files, b.wantYAML)
	if err != nil {
		return err
	}
	if err := checkBuilt(b.cfg, b.env, objs); err != nil {
		return err
	}
	p.Built, p.pending = out, nil
	return nil
}

// sameDir reports whether dir holds exactly files.
func sameDir(repo fs.FS, dir string, files map[string][]byte) (bool, error) {
	n := 0
	err := fs.WalkDir(repo, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		n++
		rel := strings.TrimPrefix(p, dir+"/")
		want, ok := files[rel]
		if !ok {
			return fs.SkipAll
		}
		got, err := fs.ReadFile(repo, p)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			n = -1 << 30
			return fs.SkipAll
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil && n == len(files), err
}

func newIncarnation(env *Environment, gen int, src *clone.Source, now time.Time) Database {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%d", env.Branch, gen, now.UnixNano())))
	inc := now.UTC().Format("20060102t150405z") + "-" + hex.EncodeToString(sum[:])[:4]
	return Database{
		Cluster:     clone.ClusterName(env.Name, gen),
		Generation:  gen,
		Incarnation: inc,
		ServerName:  clone.ServerName(env.Name, inc),
		Source:      src,
		ClonedAt:    now,
	}
}

func at(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func cloneLine(env *Environment) string {
	src := env.Database.Source
	if src == nil {
		return fmt.Sprintf("Database: %s, fresh (initdb), archiving to %s", env.Database.Cluster, env.Database.ServerName)
	}
	pit := "latest backup"
	if src.TargetTime != nil {
		pit = src.TargetTime.Format(time.RFC3339)
	}
	return fmt.Sprintf("Database: %s, recovered from %s's archive %s (%s), archiving to %s",
		env.Database.Cluster, src.Branch, src.ServerName, pit, env.Database.ServerName)
}

func displayParent(p string) string {
	if p == "" {
		return "(none)"
	}
	return p
}
