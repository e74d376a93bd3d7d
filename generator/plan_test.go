package generator

import (
	"errors"
	"flag"
	"github.com/offshoot-dev/offshoot/internal/kustomize"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/clone"
	"github.com/offshoot-dev/offshoot/internal/crdschema"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// memRepo is an environments repo in memory, seeded from offshoot init.
type memRepo struct {
	t   *testing.T
	fs  fstest.MapFS
	cfg *Config
	now time.Time
}

func newMemRepo(t *testing.T, o InitOptions) *memRepo {
	t.Helper()
	files, err := Scaffold(o)
	if err != nil {
		t.Fatal(err)
	}
	r := &memRepo{t: t, fs: fstest.MapFS{}, now: t0}
	for p, d := range files {
		r.fs[p] = &fstest.MapFile{Data: d}
	}
	if r.cfg, err = LoadConfig(r.fs); err != nil {
		t.Fatal(err)
	}
	return r
}

// do plans a request and applies the plan like a commit would.
func (r *memRepo) do(req Request) (*Plan, error) {
	r.now = r.now.Add(time.Minute)
	if req.Now.IsZero() {
		req.Now = r.now
	}
	p, err := PlanChecked(r.cfg, r.fs, req)
	if err != nil {
		return nil, err
	}
	for dir, files := range p.Dirs {
		for k := range r.fs {
			if strings.HasPrefix(k, dir+"/") {
				delete(r.fs, k)
			}
		}
		for rel, d := range files {
			r.fs[dir+"/"+rel] = &fstest.MapFile{Data: d}
		}
	}
	return p, nil
}

func (r *memRepo) must(req Request) *Plan {
	r.t.Helper()
	p, err := r.do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", req.Op, req.Branch, err)
	}
	return p
}

func (r *memRepo) snapshot(dir string) map[string]string {
	out := map[string]string{}
	for k, f := range r.fs {
		if strings.HasPrefix(k, dir+"/") {
			out[k] = string(f.Data)
		}
	}
	return out
}

func demo(t *testing.T) *memRepo {
	r := newMemRepo(t, InitOptions{Root: "master"})
	r.must(Request{Op: OpSync, Branch: "master", SHA: "1a2b3c4"})
	r.must(Request{Op: OpSync, Branch: "staging", Parent: "master", SHA: "4d5e6f7"})
	r.must(Request{Op: OpSync, Branch: "feature_1", Parent: "staging", SHA: "7a8b9c0"})
	return r
}

func TestGoldenRender(t *testing.T) {
	r := demo(t)
	// Half an hour into master's archive, recovered an hour and a half later.
	at := t0.Add(30 * time.Minute)
	r.must(Request{Op: OpSync, Branch: "feature/PITR", Parent: "master", SHA: "abcdef0", At: &at, Now: t0.Add(2 * time.Hour)})
	es := newMemRepo(t, InitOptions{})
	es.cfg.Database.ObjectStore.Credentials = clone.Credentials{
		SecretName: "s3", AccessKeyIDKey: "id", SecretAccessKeyKey: "key", Source: clone.SourceExternalSecret,
		ExternalSecret: &clone.ExternalSecretSource{StoreName: "vault", RemoteKey: "offshoot/s3"},
	}
	es.must(Request{Op: OpSync, Branch: "main", SHA: "0000000"})
	cases := map[string]map[string]string{
		"root-master":      r.snapshot("envs/master"),
		"child-staging":    r.snapshot("envs/staging"),
		"grandchild-feat1": r.snapshot("envs/feature-1-" + hashOf(t, "feature_1")),
		"pitr":             r.snapshot("envs/feature-pitr-" + hashOf(t, "feature/PITR")),
		"externalsecret":   es.snapshot("envs/main"),
	}
	for name, files := range cases {
		if len(files) != 4 {
			t.Fatalf("%s: want 4 files, got %v", name, keys(files))
		}
		for p, content := range files {
			golden := filepath.Join("testdata", "golden", name, filepath.Base(p))
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./generator -run Golden -update)", err)
			}
			if string(want) != content {
				t.Errorf("%s differs from %s:\n%s", p, golden, content)
			}
		}
	}
}

func hashOf(t *testing.T, branch string) string {
	n, err := EnvName(branch)
	if err != nil {
		t.Fatal(err)
	}
	return n[strings.LastIndexByte(n, '-')+1:]
}

func keys[M ~map[string]V, V any](m M) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func readEnv(t *testing.T, r *memRepo, branch string) *Environment {
	t.Helper()
	e, err := FindEnv(r.fs, branch)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLineageAndClone(t *testing.T) {
	r := demo(t)
	master, staging, f1 := readEnv(t, r, "master"), readEnv(t, r, "staging"), readEnv(t, r, "feature_1")
	if master.Database.Source != nil || master.Parent != "" || !master.Protected {
		t.Fatalf("master must be a protected root with a fresh database: %+v", master)
	}
	if s := staging.Database.Source; s == nil || s.ServerName != master.Database.ServerName || s.Branch != "master" {
		t.Fatalf("staging must recover from master's archive: %+v", staging.Database)
	}
	if s := f1.Database.Source; s == nil || s.ServerName != staging.Database.ServerName || s.Branch != "staging" {
		t.Fatalf("feature_1 must recover from staging's archive: %+v", f1.Database)
	}
	chain, err := Lineage(r.fs, f1)
	if err != nil || LineageString(chain) != "master → staging → feature_1" {
		t.Fatalf("lineage = %v, %v", chain, err)
	}
	// Every environment archives into a serverName of its own: no two share one.
	seen := map[string]string{}
	envs, _ := ListEnvs(r.fs)
	for _, e := range envs {
		if other, ok := seen[e.Database.ServerName]; ok {
			t.Fatalf("%s and %s share serverName %s", e.Branch, other, e.Database.ServerName)
		}
		seen[e.Database.ServerName] = e.Branch
		if !strings.HasPrefix(e.Database.ServerName, e.Name+"-") {
			t.Fatalf("%s archives into %s, not its own", e.Branch, e.Database.ServerName)
		}
	}
}

func TestChildSyncNeverTouchesParent(t *testing.T) {
	r := demo(t)
	before := r.snapshot("envs/staging")
	p := r.must(Request{Op: OpSync, Branch: "feature_2", Parent: "staging", SHA: "1111111"})
	p2 := r.must(Request{Op: OpSync, Branch: "feature_1", SHA: "2222222"})
	p3 := r.must(Request{Op: OpRefresh, Branch: "feature_1"})
	p4 := r.must(Request{Op: OpDelete, Branch: "feature_1"})
	for _, pl := range []*Plan{p, p2, p3, p4} {
		if len(pl.Dirs) != 1 {
			t.Fatalf("%s touches %d directories, want only its own: %v", pl.Op, len(pl.Dirs), keys(pl.Dirs))
		}
		for d := range pl.Dirs {
			if d != EnvDir(pl.Env.Name) {
				t.Fatalf("%s of %s touches %s", pl.Op, pl.Env.Branch, d)
			}
		}
	}
	after := r.snapshot("envs/staging")
	if len(before) != len(after) {
		t.Fatal("staging's directory changed")
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s changed", k)
		}
	}
}

func TestNewSHAChangesOnlyTheImageTag(t *testing.T) {
	r := demo(t)
	prev := r.snapshot("envs/feature-1-" + hashOf(t, "feature_1"))
	p := r.must(Request{Op: OpSync, Branch: "feature_1", SHA: "0f0f0f1", WantBuilt: true})
	if p.UpToDate {
		t.Fatal("a new SHA must change something")
	}
	next := r.snapshot(EnvDir(p.Env.Name))
	if next[EnvDir(p.Env.Name)+"/"+DatabaseFile] != prev[EnvDir(p.Env.Name)+"/"+DatabaseFile] {
		t.Fatal("the database must not change when only the SHA does")
	}
	k := next[EnvDir(p.Env.Name)+"/"+KustomizationFile]
	if !strings.Contains(k, "newTag: 0f0f0f1") || strings.Contains(k, "7a8b9c0") {
		t.Fatalf("kustomization does not carry the new tag only:\n%s", k)
	}
	if !strings.Contains(string(p.Built), "image: ghcr.io/example/shop:0f0f0f1") {
		t.Fatal("built Deployment does not run the new image")
	}
}

func TestSameEventTwiceIsUpToDate(t *testing.T) {
	r := demo(t)
	for _, req := range []Request{
		{Op: OpSync, Branch: "feature_1", SHA: "7a8b9c0"},
		{Op: OpSync, Branch: "feature_1", Parent: "staging", SHA: "7a8b9c0"},
		{Op: OpSync, Branch: "master", SHA: "1a2b3c4"},
	} {
		p := r.must(req)
		if !p.UpToDate || len(p.Dirs) != 0 {
			t.Fatalf("%+v: want up to date, got a change of %v", req, keys(p.Dirs))
		}
	}
	r.must(Request{Op: OpDelete, Branch: "feature_1"})
	if p := r.must(Request{Op: OpDelete, Branch: "feature_1"}); !p.UpToDate {
		t.Fatal("deleting twice must be a no-op")
	}
}

func TestRefreshAndRecreateNeverMeetAnOldArchive(t *testing.T) {
	r := demo(t)
	first := readEnv(t, r, "feature_1")
	at := t0.Add(30 * time.Minute)
	r.must(Request{Op: OpRefresh, Branch: "feature_1", At: &at, Now: t0.Add(2 * time.Hour)})
	refreshed := readEnv(t, r, "feature_1")
	if refreshed.Database.ServerName == first.Database.ServerName || refreshed.Database.Cluster == first.Database.Cluster {
		t.Fatalf("refresh must make a new incarnation: %+v → %+v", first.Database, refreshed.Database)
	}
	if refreshed.Database.Generation != 2 || refreshed.Database.Source.TargetTime == nil || !refreshed.Database.Source.TargetTime.Equal(at) {
		t.Fatalf("refresh: %+v", refreshed.Database)
	}
	r.must(Request{Op: OpDelete, Branch: "feature_1"})
	// Re-created in the same second as the deletion: still a new serverName.
	p := r.must(Request{Op: OpSync, Branch: "feature_1", Parent: "staging", SHA: "7a8b9c0", Now: r.now})
	for _, old := range []string{first.Database.ServerName, refreshed.Database.ServerName} {
		if p.Env.Database.ServerName == old {
			t.Fatalf("re-created environment reuses archive %s", old)
		}
	}
}

func TestBadRequestsWriteNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"unknown parent", Request{Op: OpSync, Branch: "f", Parent: "nope", SHA: "1234567"}, `unknown parent "nope"`},
		{"no parent", Request{Op: OpSync, Branch: "f", SHA: "1234567"}, "name its parent"},
		{"own parent", Request{Op: OpSync, Branch: "f", Parent: "f", SHA: "1234567"}, "its own parent"},
		{"bad sha", Request{Op: OpSync, Branch: "f", Parent: "master", SHA: "not-a-sha"}, "invalid app commit SHA"},
		{"bad branch", Request{Op: OpSync, Branch: "a..b", Parent: "master", SHA: "1234567"}, "'..'"},
		{"bad lock branch", Request{Op: OpSync, Branch: "x.lock", Parent: "master", SHA: "1234567"}, ".lock"},
		{"delete protected", Request{Op: OpDelete, Branch: "staging"}, "protected"},
		{"delete root", Request{Op: OpDelete, Branch: "master"}, "protected"},
		{"re-parent", Request{Op: OpSync, Branch: "feature_1", Parent: "master", SHA: "1234567"}, "already exists with parent"},
		{"refresh root", Request{Op: OpRefresh, Branch: "master"}, "root environment"},
		{"refresh missing", Request{Op: OpRefresh, Branch: "ghost"}, "no environment"},
		{"root with parent", Request{Op: OpSync, Branch: "master", Parent: "staging", SHA: "1234567"}, "root branch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := demo(t)
			before := len(r.fs)
			p, err := r.do(tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v (plan %+v)", tc.want, err, p)
			}
			if len(r.fs) != before {
				t.Fatal("a failed request changed the repo")
			}
		})
	}
}

func TestParentChainLoopIsRefused(t *testing.T) {
	r := demo(t)
	// Hand-edit the metadata so that staging's parent is feature_1: a loop.
	st := readEnv(t, r, "staging")
	f1 := readEnv(t, r, "feature_1")
	st.Parent, st.ParentEnv = f1.Branch, f1.Name
	b, _ := yaml.Marshal(st)
	r.fs["envs/staging/env.yaml"] = &fstest.MapFile{Data: b}
	_, err := r.do(Request{Op: OpSync, Branch: "feature_3", Parent: "feature_1", SHA: "1234567"})
	if err == nil || !strings.Contains(err.Error(), "loops") {
		t.Fatalf("want a loop error, got %v", err)
	}
	// A broken chain (missing ancestor) is refused too.
	delete(r.fs, "envs/master/env.yaml")
	st.Parent, st.ParentEnv = "master", "master"
	b, _ = yaml.Marshal(st)
	r.fs["envs/staging/env.yaml"] = &fstest.MapFile{Data: b}
	_, err = r.do(Request{Op: OpSync, Branch: "feature_3", Parent: "staging", SHA: "1234567"})
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("want a broken-chain error, got %v", err)
	}
}

func TestDeleteParentListsChildren(t *testing.T) {
	r := demo(t)
	r.must(Request{Op: OpSync, Branch: "feature_1a", Parent: "feature_1", SHA: "1234567"})
	p := r.must(Request{Op: OpDelete, Branch: "feature_1"})
	if len(p.Children) != 1 || p.Children[0] != "feature_1a" {
		t.Fatalf("children = %v", p.Children)
	}
	if _, err := FindEnv(r.fs, "feature_1a"); err != nil {
		t.Fatalf("the child must remain: %v", err)
	}
	lines := TreeLines(mustList(t, r), func(e *Environment) string { return e.Branch })
	if !strings.Contains(strings.Join(lines, "\n"), "feature_1a  (parent feature_1 is missing)") {
		t.Fatalf("tree must show the orphan:\n%s", strings.Join(lines, "\n"))
	}
}

func mustList(t *testing.T, r *memRepo) []*Environment {
	envs, err := ListEnvs(r.fs)
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

func TestEnvNameTakenByAnotherBranch(t *testing.T) {
	r := demo(t)
	f1 := readEnv(t, r, "feature_1")
	// Pretend another branch owns the name feature_1 maps to.
	f1.Branch = "someone/else"
	b, _ := yaml.Marshal(f1)
	r.fs[EnvDir(f1.Name)+"/env.yaml"] = &fstest.MapFile{Data: b}
	_, err := r.do(Request{Op: OpSync, Branch: "feature_1", SHA: "1234567"})
	if err == nil || !strings.Contains(err.Error(), "already used by branch") {
		t.Fatalf("want a name collision error, got %v", err)
	}
}

func TestBrokenBaseFailsValidation(t *testing.T) {
	r := demo(t)
	r.fs["base/app/deployment.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: other\n")}
	_, err := r.do(Request{Op: OpSync, Branch: "feature_9", Parent: "master", SHA: "1234567"})
	var be *kustomize.BuildError
	if err == nil || (!errors.As(err, &be) && !strings.Contains(err.Error(), "Deployment")) {
		t.Fatalf("want a build/validation error, got %v", err)
	}
	// A base that reaches outside the repo is refused by the confined build.
	r = demo(t)
	r.fs["base/app/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources:\n- deployment.yaml\n- /etc/passwd\n")}
	if _, err := r.do(Request{Op: OpSync, Branch: "feature_9", Parent: "master", SHA: "1234567"}); !errors.As(err, &be) {
		t.Fatalf("want a kustomize build error, got %v", err)
	}
}

// The fully built environments — what Argo CD applies — pass the real CNPG
// and Barman Cloud CRD schemas.
func TestBuiltEnvironmentsPassCRDSchemas(t *testing.T) {
	v := crdschema.CNPG(t)
	r := demo(t)
	at := t0.Add(30 * time.Minute)
	r.must(Request{Op: OpSync, Branch: "feature/PITR", Parent: "staging", SHA: "abcdef0", At: &at, Now: t0.Add(2 * time.Hour)})
	r.must(Request{Op: OpRefresh, Branch: "feature_1"})
	for _, e := range mustList(t, r) {
		out, _, err := BuildEnv(r.fs, EnvDir(e.Name), nil)
		if err != nil {
			t.Fatal(err)
		}
		skipped, err := v.ValidateYAML(out)
		if err != nil {
			t.Fatalf("%s: %v", e.Branch, err)
		}
		// The built-in kinds (Namespace, the credentials Secret, the clone
		// guard's ConfigMap, ServiceAccount, Role, RoleBinding, guard and
		// adopt Jobs (and retire Job when protected), the app's Deployment,
		// Service, Ingress) against the Kubernetes types and OpenAPI schema.
		builtin := map[string]bool{}
		for _, doc := range strings.Split(string(out), "\n---\n") {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatal(err)
			}
			av, _ := m["apiVersion"].(string)
			kind, _ := m["kind"].(string)
			if !crdschema.IsBuiltin(av, kind) {
				continue
			}
			if err := crdschema.ValidateBuiltin(m); err != nil {
				t.Fatalf("%s: %v", e.Branch, err)
			}
			builtin[kind+"/"+m["metadata"].(map[string]any)["name"].(string)] = true
		}
		want := 11
		if e.Protected {
			want++ // the retire Job
		}
		if len(skipped) != want || len(builtin) != want {
			t.Fatalf("%s: skipped by the CRD check %v, validated as built-in %v", e.Branch, skipped, keys(builtin))
		}
		for _, k := range skipped {
			if !builtin[k] {
				t.Fatalf("%s: %s validated neither against a CRD nor as a built-in kind", e.Branch, k)
			}
		}
	}
}
