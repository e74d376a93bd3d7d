package crdschema

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// obj parses one YAML document into the map form Validate takes.
func obj(t *testing.T, y string) map[string]any {
	t.Helper()
	u, err := decodeYAMLDoc([]byte(y))
	if err != nil {
		t.Fatalf("bad test YAML: %v\n%s", err, y)
	}
	if u == nil {
		t.Fatalf("empty test YAML")
	}
	return u
}

func mustPass(t *testing.T, v *Validator, y string) {
	t.Helper()
	if err := v.Validate(obj(t, y)); err != nil {
		t.Fatalf("expected the object to be accepted, got:\n%v", err)
	}
}

// mustFail asserts that validation fails with (at least) a problem at path
// whose message contains substr, and returns the *Error.
func mustFail(t *testing.T, v *Validator, y, path, substr string) *Error {
	t.Helper()
	err := v.Validate(obj(t, y))
	if err == nil {
		t.Fatalf("expected a problem at %s, but the object was accepted:\n%s", path, y)
	}
	var verr *Error
	if !errors.As(err, &verr) {
		t.Fatalf("expected a *crdschema.Error, got %T: %v", err, err)
	}
	requireProblem(t, verr, path, substr)
	return verr
}

func requireProblem(t *testing.T, verr *Error, path, substr string) *field.Error {
	t.Helper()
	for _, fe := range verr.Errs {
		if fe.Field == path && strings.Contains(fe.Error(), substr) {
			return fe
		}
	}
	t.Fatalf("no problem at %q containing %q; got:\n%v", path, substr, verr)
	return nil
}

// ---------- CloudNativePG ----------

const minimalCluster = `
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: pg
  namespace: db
spec:
  instances: 1
  storage:
    size: 1Gi
`

func TestCNPGKinds(t *testing.T) {
	kinds := CNPG(t).Kinds()
	for _, want := range []string{
		"postgresql.cnpg.io/v1/Cluster",
		"postgresql.cnpg.io/v1/ScheduledBackup",
		"postgresql.cnpg.io/v1/Backup",
		"barmancloud.cnpg.io/v1/ObjectStore",
	} {
		if !slices.Contains(kinds, want) {
			t.Errorf("Kinds() lacks %s: %v", want, kinds)
		}
	}
	if !slices.IsSorted(kinds) {
		t.Errorf("Kinds() is not sorted: %v", kinds)
	}
}

func TestClusterMinimalValid(t *testing.T) {
	v := CNPG(t)
	mustPass(t, v, minimalCluster)

	// The same object built in Go with plain ints (not int64) is accepted too.
	if err := v.Validate(map[string]any{
		"apiVersion": "postgresql.cnpg.io/v1",
		"kind":       "Cluster",
		"metadata":   map[string]any{"name": "pg"}, // no namespace: taken from the request by the apiserver
		"spec": map[string]any{
			"instances": 3,
			"storage":   map[string]any{"size": "1Gi"},
		},
	}); err != nil {
		t.Fatal(err)
	}
}

func TestValidateDoesNotModifyInput(t *testing.T) {
	v := CNPG(t)
	in := obj(t, minimalCluster+"  instancez: 2\nstatus:\n  phase: x\n")
	before := obj(t, minimalCluster+"  instancez: 2\nstatus:\n  phase: x\n")
	_ = v.Validate(in)
	if !reflect.DeepEqual(in, before) {
		t.Fatalf("Validate modified its input:\n%v\n%v", in, before)
	}
}

func TestClusterUnknownField(t *testing.T) {
	v := CNPG(t)
	verr := mustFail(t, v, minimalCluster+"  instancez: 2\n", "spec.instancez", "unknown field")
	if len(verr.Errs) != 1 {
		t.Errorf("expected exactly one problem, got:\n%v", verr)
	}
	if !strings.Contains(verr.Error(), "spec.instancez") {
		t.Errorf("error text does not name the path: %v", verr)
	}

	// Unknown fields deep inside lists, and unknown ObjectMeta fields, are reported with their paths.
	verr = mustFail(t, v, `
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: pg
  labelz: {a: b}
spec:
  instances: 1
  storage: {size: 1Gi}
  plugins:
  - name: barman-cloud.cloudnative-pg.io
    isWalArchiver: true
`, "spec.plugins[0].isWalArchiver", "unknown field")
	requireProblem(t, verr, "metadata.labelz", "unknown field")
	if len(verr.Errs) != 2 {
		t.Errorf("expected exactly two problems, got:\n%v", verr)
	}
}

func TestClusterWrongType(t *testing.T) {
	v := CNPG(t)
	verr := mustFail(t, v, `
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  instances: "two"
  storage: {size: 1Gi}
`, "spec.instances", "must be of type integer")
	// Like the apiserver, CEL rules are not run on an object with type errors.
	requireProblem(t, verr, "<nil>", "some validation rules were not checked")

	// Schema bounds and required fields are enforced too.
	mustFail(t, v, `
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg}
spec:
  instances: 0
`, "spec.instances", "should be greater than or equal to 1")
	// spec.instances is required but has a default (1) in the v1.30 CRD: defaulting runs before
	// validation, as in the apiserver, so leaving it out is fine.
	mustPass(t, v, `
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg}
spec:
  storage: {size: 1Gi}
`)
	mustFail(t, v, `
apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata: {name: b}
spec:
  cluster: {name: pg}
`, "spec.schedule", "Required value")
}

func TestClusterCELRule(t *testing.T) {
	v := CNPG(t)
	// postgresql.cnpg.io_clusters.yaml (v1.30.0), on .spec:
	//   x-kubernetes-validations:
	//   - message: imageName and imageCatalogRef are mutually exclusive
	//     rule: '!(has(self.imageCatalogRef) && has(self.imageName))'
	// Both fields are individually schema-valid, so only CEL can reject this.
	const withCatalog = minimalCluster + `  imageCatalogRef:
    apiGroup: postgresql.cnpg.io
    kind: ImageCatalog
    name: postgresql
    major: 17
`
	mustPass(t, v, withCatalog) // control: the catalog reference alone is fine
	verr := mustFail(t, v, withCatalog+"  imageName: ghcr.io/cloudnative-pg/postgresql:17.5\n",
		"spec", "imageName and imageCatalogRef are mutually exclusive")
	if len(verr.Errs) != 1 {
		t.Errorf("expected only the CEL problem, got:\n%v", verr)
	}

	// Rules on nested objects run as well: imageCatalogRef.kind must be an image catalog.
	mustFail(t, v, strings.Replace(withCatalog, "kind: ImageCatalog", "kind: ConfigMap", 1),
		"spec.imageCatalogRef", "Only image catalogs are supported")

	// CRD quirk, faithfully reproduced: apiGroup is optional in the schema, but the rule
	// `self.apiGroup == 'postgresql.cnpg.io'` fails with "no such key" when it is absent,
	// so the apiserver rejects an imageCatalogRef without apiGroup.
	mustFail(t, v, strings.Replace(withCatalog, "    apiGroup: postgresql.cnpg.io\n", "", 1),
		"spec.imageCatalogRef", "no such key: apiGroup")
}

// offshootCluster is the shape offshoot emits: Barman Cloud plugin for WAL
// archiving and recovery from an external cluster through the same plugin.
const offshootCluster = `
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: pg
  namespace: db
spec:
  instances: 1
  storage:
    size: 1Gi
  plugins:
  - name: barman-cloud.cloudnative-pg.io
    isWALArchiver: true
    parameters:
      barmanObjectName: x
      serverName: pg
  bootstrap:
    recovery:
      source: origin
  externalClusters:
  - name: origin
    plugin:
      name: barman-cloud.cloudnative-pg.io
      parameters:
        barmanObjectName: x
        serverName: origin
`

func TestClusterBarmanPluginShape(t *testing.T) {
	v := CNPG(t)
	mustPass(t, v, offshootCluster)
	// Plugin parameters are a map of strings: a non-string value is rejected.
	mustFail(t, v, strings.Replace(offshootCluster, "serverName: pg", "serverName: 5", 1),
		"spec.plugins[0].parameters.serverName", "must be of type string")
	// YAML trap, reproduced as kubectl decodes YAML (YAML 1.1): an unquoted y/n/yes/no/on/off
	// is a boolean, so `serverName: y` is rejected; it must be quoted.
	mustFail(t, v, strings.Replace(offshootCluster, "serverName: pg", "serverName: y", 1),
		"spec.plugins[0].parameters.serverName", `must be of type string: "boolean"`)
	mustPass(t, v, strings.Replace(offshootCluster, "serverName: pg", `serverName: "y"`, 1))
	// An externalClusters entry needs a name.
	mustFail(t, v, strings.Replace(offshootCluster, "  - name: origin\n    plugin:", "  - plugin:", 1),
		"spec.externalClusters[0].name", "Required value")
}

const objectStore = `
apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata:
  name: x
  namespace: db
spec:
  configuration:
    destinationPath: s3://bucket/x
    endpointURL: http://minio.minio.svc:9000
    s3Credentials:
      accessKeyId:
        name: minio-creds
        key: ACCESS_KEY_ID
      secretAccessKey:
        name: minio-creds
        key: ACCESS_SECRET_KEY
  retentionPolicy: "30d"
`

func TestObjectStore(t *testing.T) {
	v := CNPG(t)
	mustPass(t, v, objectStore)
	mustFail(t, v, strings.Replace(objectStore, `"30d"`, `"30 days"`, 1), "spec.retentionPolicy", "should match")
	// CEL rule of the plugin CRD: serverName belongs in the Cluster's plugin parameters.
	mustFail(t, v, strings.Replace(objectStore, "    endpointURL:", "    serverName: pg\n    endpointURL:", 1),
		"spec.configuration.serverName", "use the 'serverName' plugin parameter in the Cluster resource")
}

const scheduledBackup = `
apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata:
  name: pg-daily
  namespace: db
spec:
  schedule: "0 0 2 * * *"
  immediate: true
  backupOwnerReference: self
  cluster:
    name: pg
  method: plugin
  pluginConfiguration:
    name: barman-cloud.cloudnative-pg.io
`

func TestScheduledBackup(t *testing.T) {
	v := CNPG(t)
	mustPass(t, v, scheduledBackup)
	mustFail(t, v, strings.Replace(scheduledBackup, "method: plugin", "method: plugins", 1), "spec.method", "Unsupported value")
}

func TestMetadataValidation(t *testing.T) {
	v := CNPG(t)
	mustFail(t, v, strings.Replace(minimalCluster, "name: pg", "name: PG_main", 1), "metadata.name", "RFC 1123 subdomain")
	mustFail(t, v, strings.Replace(minimalCluster, "namespace: db", "namespace: DB_prod", 1), "metadata.namespace", "RFC 1123 label")
	mustFail(t, v, strings.Replace(minimalCluster, "namespace: db", "namespace: db.prod", 1), "metadata.namespace", "must not contain dots")
	mustFail(t, v, strings.Replace(minimalCluster, "  namespace: db\n", "  labels: {app: 'not valid!'}\n", 1), "metadata.labels", "a valid label must be")
	mustFail(t, v, strings.Replace(minimalCluster, "  name: pg\n", "", 1), "metadata.name", "name or generateName is required")
	// generateName is expanded as on create.
	mustPass(t, v, strings.Replace(minimalCluster, "name: pg", "generateName: pg-", 1))
}

func TestUnknownKindOrVersion(t *testing.T) {
	v := CNPG(t)
	for _, tc := range []struct{ apiVersion, kind, want string }{
		{"postgresql.cnpg.io/v1", "Clusterz", `no kind "Clusterz"`},
		{"postgresql.cnpg.io/v2", "Cluster", `no version "v2"`},
		{"example.com/v1", "Cluster", `no CRD loaded for API group "example.com"`},
	} {
		err := v.Validate(map[string]any{
			"apiVersion": tc.apiVersion, "kind": tc.kind,
			"metadata": map[string]any{"name": "pg"},
			"spec":     map[string]any{"instances": 1},
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: want error containing %q, got %v", tc.apiVersion, tc.kind, tc.want, err)
		}
	}
	if err := v.Validate(map[string]any{"metadata": map[string]any{"name": "pg"}}); err == nil {
		t.Error("an object without apiVersion/kind was accepted")
	}
}

func TestValidateYAML(t *testing.T) {
	v := CNPG(t)
	ns := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: db\n"
	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec: {whatever: 1}\n"

	stream := "# generated\n---\n" + ns + "---\n" + minimalCluster + "---\n" + deploy + "---\n" + objectStore + "---\n" + scheduledBackup + "---\n"
	skipped, err := v.ValidateYAML([]byte(stream))
	if err != nil {
		t.Fatalf("valid stream rejected: %v", err)
	}
	if want := []string{"Namespace/db", "Deployment/web"}; !slices.Equal(skipped, want) {
		t.Fatalf("skipped = %v, want %v", skipped, want)
	}

	// The Cluster is really validated, not skipped.
	skipped, err = v.ValidateYAML([]byte(ns + "---\n" + minimalCluster + "  instancez: 2\n"))
	if err == nil || !strings.Contains(err.Error(), "spec.instancez") || !strings.Contains(err.Error(), "Cluster/pg") {
		t.Fatalf("want an error naming Cluster/pg and spec.instancez, got %v", err)
	}
	var verr *Error
	if !errors.As(err, &verr) || verr.GVK.Kind != "Cluster" {
		t.Fatalf("want a wrapped *Error for the Cluster, got %#v", err)
	}
	if !slices.Equal(skipped, []string{"Namespace/db"}) {
		t.Fatalf("skipped = %v", skipped)
	}

	// An unknown kind of a loaded group is an error, not a skip.
	skipped, err = v.ValidateYAML([]byte(ns + "---\n" + strings.Replace(minimalCluster, "kind: Cluster", "kind: Clusterz", 1)))
	if err == nil || !strings.Contains(err.Error(), `no kind "Clusterz"`) {
		t.Fatalf("want an unknown-kind error, got %v (skipped %v)", err, skipped)
	}

	// Every failing document is reported, not just the first.
	_, err = v.ValidateYAML([]byte(minimalCluster + "  instancez: 2\n---\n" + strings.Replace(scheduledBackup, "method: plugin", "method: nope", 1)))
	if err == nil || !strings.Contains(err.Error(), "spec.instancez") || !strings.Contains(err.Error(), "spec.method") {
		t.Fatalf("want both documents' problems, got %v", err)
	}

	// Duplicate keys and documents without a kind are errors.
	if _, err := v.ValidateYAML([]byte(minimalCluster + "  instances: 2\n")); err == nil || !strings.Contains(err.Error(), "already set") {
		t.Fatalf("duplicate key not rejected: %v", err)
	}
	if _, err := v.ValidateYAML([]byte("metadata:\n  name: x\n")); err == nil {
		t.Fatal("document without apiVersion/kind accepted")
	}

	// A v1 List is expanded.
	list := "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n- apiVersion: postgresql.cnpg.io/v1\n  kind: Cluster\n  metadata: {name: pg}\n  spec: {instances: 1, instancez: 1}\n"
	skipped, err = v.ValidateYAML([]byte(list))
	if err == nil || !strings.Contains(err.Error(), "spec.instancez") || !slices.Equal(skipped, []string{"ConfigMap/c"}) {
		t.Fatalf("List not expanded: skipped %v, err %v", skipped, err)
	}
}

// ---------- Argo CD ----------

func TestArgoCD(t *testing.T) {
	v := ArgoCD(t)
	if got, want := v.Kinds(), []string{
		"argoproj.io/v1alpha1/AppProject",
		"argoproj.io/v1alpha1/Application",
		"argoproj.io/v1alpha1/ApplicationSet",
	}; !slices.Equal(got, want) {
		t.Fatalf("Kinds() = %v, want %v", got, want)
	}

	// list generator elements are x-kubernetes-preserve-unknown-fields: arbitrary keys are fine there.
	mustPass(t, v, `
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: offshoot-envs
  namespace: argocd
spec:
  goTemplate: true
  goTemplateOptions: ["missingkey=error"]
  generators:
  - list:
      elements:
      - env: dev
        branch: env/dev
        anything: {nested: [1, 2]}
  template:
    metadata:
      name: 'pg-{{.env}}'
    spec:
      project: offshoot
      source:
        repoURL: http://git.example/offshoot.git
        targetRevision: '{{.branch}}'
        path: .
      destination:
        server: https://kubernetes.default.svc
        namespace: 'pg-{{.env}}'
      syncPolicy:
        automated: {prune: true, selfHeal: true}
        syncOptions: [CreateNamespace=true]
`)

	mustPass(t, v, `
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: offshoot
  namespace: argocd
spec:
  sourceRepos: ['http://git.example/offshoot.git']
  destinations:
  - server: https://kubernetes.default.svc
    namespace: '*'
  clusterResourceWhitelist:
  - group: ''
    kind: Namespace
`)

	const app = `
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: pg-dev
  namespace: argocd
spec:
  project: offshoot
  source:
    repoURL: http://git.example/offshoot.git
    targetRevision: env/dev
    path: .
  destination:
    server: https://kubernetes.default.svc
    namespace: pg-dev
`
	mustPass(t, v, app) // control
	mustFail(t, v, app+"  sourcez: {}\n", "spec.sourcez", "unknown field")
	mustFail(t, v, strings.Replace(app, "  project: offshoot\n", "", 1), "spec.project", "Required value")
}

// ---------- generic behaviour, on a synthetic CRD (no module download) ----------

func widgets(t *testing.T) *Validator {
	t.Helper()
	v, err := Load(filepath.Join("testdata", "widgets.example.com.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLoad(t *testing.T) {
	v := widgets(t)
	if got, want := v.Kinds(), []string{"example.com/v1/Gadget", "example.com/v1/Widget"}; !slices.Equal(got, want) {
		t.Fatalf("Kinds() = %v, want %v (unserved v1beta1 must not be listed)", got, want)
	}

	_, err := Load(filepath.Join("testdata", "not-a-crd.yaml"))
	if err == nil || !strings.Contains(err.Error(), `kind "ConfigMap"`) {
		t.Fatalf("a non-CRD document must be an error, got %v", err)
	}
	_, err = Load(filepath.Join("testdata", "widgets.example.com.yaml"), filepath.Join("testdata", "widgets.example.com.yaml"))
	if err == nil || !strings.Contains(err.Error(), "already defined") {
		t.Fatalf("a duplicate CRD must be an error, got %v", err)
	}
	if _, err := Load(filepath.Join("testdata", "missing.yaml")); err == nil {
		t.Fatal("a missing file must be an error")
	}
	if _, err := LoadDirs("testdata"); err == nil {
		t.Fatal("LoadDirs(testdata) must fail on not-a-crd.yaml")
	}
}

func TestLoadDirsSkipsKustomization(t *testing.T) {
	ArgoCD(t) // makes sure the module is downloaded
	dir, err := ModuleDir(ArgoCDModule, ArgoCDVersion)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, argoCDCRDDir, "kustomization.yaml")); err != nil {
		t.Fatalf("expected a kustomization.yaml next to the Argo CD CRDs: %v", err)
	}
	v, err := LoadDirs(filepath.Join(dir, argoCDCRDDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Kinds()) != 3 {
		t.Fatalf("Kinds() = %v", v.Kinds())
	}
}

func TestUnservedVersion(t *testing.T) {
	err := widgets(t).Validate(obj(t, "apiVersion: example.com/v1beta1\nkind: Widget\nmetadata: {name: w}\nspec: {}\n"))
	if err == nil || !strings.Contains(err.Error(), "not served") {
		t.Fatalf("want a not-served error, got %v", err)
	}
}

func TestDefaultsApplyBeforeCEL(t *testing.T) {
	v := widgets(t)
	// mode defaults to "fast", and the rule limits fast mode to 3 replicas:
	// the object only fails because the default is applied first.
	mustFail(t, v, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replicas: 5}\n",
		"spec", "fast mode allows at most 3 replicas")
	mustPass(t, v, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replicas: 5, mode: safe}\n")
}

func TestListMapKeysAndPreserveUnknown(t *testing.T) {
	v := widgets(t)
	mustFail(t, v, `
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec:
  replicas: 1
  ports:
  - {name: http, port: 80}
  - {name: http, port: 8080}
`, "spec.ports[1]", "Duplicate value")
	mustPass(t, v, `
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec:
  replicas: 1
  values: {anything: {goes: [here]}}
`)
	mustFail(t, v, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replicas: 1, extra: 1}\n",
		"spec.extra", "unknown field")
}

func TestStatusAndScope(t *testing.T) {
	v := widgets(t)
	// With the status subresource, status is dropped on create (its unknown fields are still reported).
	mustPass(t, v, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replicas: 1}\nstatus: {phase: 7}\n")
	mustFail(t, v, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replicas: 1}\nstatus: {phasez: x}\n",
		"status.phasez", "unknown field")
	// A cluster-scoped object's namespace is ignored, as the apiserver clears it.
	mustPass(t, v, "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g, namespace: x}\nspec: {color: red}\n")
	mustFail(t, v, "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\nspec: {color: Red}\n",
		"spec.color", "should match")
}

func TestModuleDirArgs(t *testing.T) {
	if _, err := ModuleDir(CNPGModule, ""); err == nil {
		t.Fatal("ModuleDir without a version must fail")
	}
	dir, err := ModuleDir(CNPGModule, CNPGVersion)
	if errors.Is(err, ErrGoNotFound) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, cnpgCRDDir, "postgresql.cnpg.io_clusters.yaml")); err != nil {
		t.Fatal(err)
	}
}

func TestValidateObjectTyped(t *testing.T) {
	type storage struct {
		Size string `json:"size"`
	}
	type spec struct {
		Instances int     `json:"instances"`
		Storage   storage `json:"storage"`
		Typo      string  `json:"storageClas,omitempty"`
	}
	type cluster struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Metadata   map[string]any `json:"metadata"`
		Spec       spec           `json:"spec"`
	}
	v := CNPG(t)
	c := cluster{APIVersion: "postgresql.cnpg.io/v1", Kind: "Cluster", Metadata: map[string]any{"name": "pg"}, Spec: spec{Instances: 1, Storage: storage{Size: "1Gi"}}}
	if err := v.ValidateObject(c); err != nil {
		t.Fatal(err)
	}
	c.Spec.Typo = "fast"
	err := v.ValidateObject(&c)
	var verr *Error
	if !errors.As(err, &verr) {
		t.Fatalf("want *Error, got %v", err)
	}
	requireProblem(t, verr, "spec.storageClas", "unknown field")
	if err := v.ValidateObject([]int{1}); err == nil {
		t.Fatal("a non-object was accepted")
	}
}

func TestModuleDirWithoutGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := downloadModule(CNPGModule, CNPGVersion)
	if !errors.Is(err, ErrGoNotFound) {
		t.Fatalf("want ErrGoNotFound, got %v", err)
	}
}

// fakeTB records how a memoised loader reacts to a load error.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

func TestLoaderSkipsOnlyWithoutGo(t *testing.T) {
	var m memo
	tb := &fakeTB{}
	m.get(tb, func() (*Validator, error) { return nil, fmt.Errorf("wrapped: %w", ErrGoNotFound) })
	if !tb.skipped || tb.failed {
		t.Fatalf("missing go: skipped=%v failed=%v, want a skip", tb.skipped, tb.failed)
	}

	var m2 memo
	tb = &fakeTB{}
	calls := 0
	load := func() (*Validator, error) { calls++; return nil, errors.New("proxy unreachable") }
	m2.get(tb, load)
	m2.get(tb, load)
	if tb.skipped || !tb.failed {
		t.Fatalf("other error: skipped=%v failed=%v, want a failure", tb.skipped, tb.failed)
	}
	if calls != 1 {
		t.Fatalf("loader ran %d times, want 1 (memoised)", calls)
	}
}

func TestConcurrentValidate(t *testing.T) {
	v := CNPG(t)
	good, bad := obj(t, offshootCluster), obj(t, minimalCluster+"  instancez: 2\n")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if err := v.Validate(good); err != nil {
					errs <- err
					return
				}
				if err := v.Validate(bad); err == nil {
					errs <- errors.New("bad object accepted")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
