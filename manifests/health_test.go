package manifests

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite argocd-cm-health.yaml from health/*.lua")

const healthKeyPrefix = "resource.customizations.health."

// healthStatus is what Argo CD reads back from a health script
// (gitops-engine health.HealthStatus).
type healthStatus struct {
	Status  string
	Message string
}

// validHealthStatuses are the codes Argo CD accepts from a Lua script; any
// other string becomes "Unknown: Lua returned an invalid health status".
var validHealthStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

// yamlToMap decodes one YAML document the way Kubernetes objects reach
// Argo CD: through JSON, so numbers are float64, maps map[string]any.
func yamlToMap(t testing.TB, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("parse YAML: %v", err)
	}
	return m
}

// toLua converts a decoded JSON/YAML value to a Lua value exactly as
// Argo CD v2.14 does (util/lua decodeValue): maps become hash tables,
// slices array tables, numbers LNumber, nil LNil.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(toLua(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), toLua(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// runHealthScript runs a health script the way Argo CD v2.14 runs an
// argocd-cm resource.customizations.health.* script (util/lua runLua and
// ExecuteHealthLua): standard libraries skipped except package, base and
// table (Argo CD adds a reduced os library, which these scripts do not
// use), a 1s timeout, the object as the global `obj`, and the returned
// table read as {status, message}.
func runHealthScript(script string, obj map[string]any) (healthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.fn), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return healthStatus{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return healthStatus{}, err
	}
	ret := l.Get(-1)
	tbl, ok := ret.(*lua.LTable)
	if !ok {
		return healthStatus{}, fmt.Errorf("script returned %s, want a table", ret.Type())
	}
	var hs healthStatus
	for field, dst := range map[string]*string{"status": &hs.Status, "message": &hs.Message} {
		switch v := tbl.RawGetString(field).(type) {
		case lua.LString:
			*dst = string(v)
		case *lua.LNilType:
		default:
			return healthStatus{}, fmt.Errorf("%s is a %s, want a string", field, v.Type())
		}
	}
	if !validHealthStatuses[hs.Status] {
		return healthStatus{}, fmt.Errorf("invalid health status %q (Argo CD would report Unknown)", hs.Status)
	}
	return hs, nil
}

func readHealthScript(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(HealthScripts(), name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const pluginWait = " (waiting for the plugin; check the plugin's pod and the operator's log if it lasts)"

func TestClusterHealth(t *testing.T) {
	script := readHealthScript(t, "postgresql.cnpg.io_Cluster.lua")
	tests := []struct {
		file string
		want healthStatus
	}{
		{"cluster-no-status.yaml", healthStatus{"Progressing", "Waiting for the operator"}},
		{"cluster-setting-up-primary.yaml", healthStatus{"Progressing",
			"Setting up primary: Creating primary instance feature-1-3fa9c2-pg1-1-full-recovery"}},
		{"cluster-healthy.yaml", healthStatus{"Healthy",
			"Cluster in healthy state (2/2 instances ready)"}},
		{"cluster-healthy-replica-not-ready.yaml", healthStatus{"Progressing",
			"Cluster in healthy state (1/2 instances ready)"}},
		{"cluster-switchover.yaml", healthStatus{"Progressing",
			"Switchover in progress: Switching over to feature-1-3fa9c2-pg1-2"}},
		{"cluster-unrecoverable.yaml", healthStatus{"Degraded",
			"Cluster is unrecoverable and needs manual intervention: One or more instances were previously created, " +
				"but no PersistentVolumeClaims (PVCs) exist. The cluster is in an unrecoverable state. " +
				"To resolve this, restore the cluster from a recent backup."}},
		// Transient while the plugin starts or registers: Progressing, so
		// a sync wave waits instead of failing.
		{"cluster-unknown-plugin.yaml", healthStatus{"Progressing",
			"Cluster cannot proceed to reconciliation due to an unknown plugin being required: " +
				"Unknown plugin: 'barman-cloud.cloudnative-pg.io'. This may be caused by the plugin not being loaded " +
				"correctly by the operator. Check the operator and plugin logs for errors" + pluginWait}},
		{"cluster-plugin-error.yaml", healthStatus{"Progressing",
			"Cluster cannot proceed to reconciliation due to an error while interacting with plugins: " +
				"rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: " +
				"dial tcp 10.96.0.200:9090: connect: connection refused\"" + pluginWait}},
		// A parent whose archiving quietly fails must not look Healthy.
		{"cluster-archiving-failing.yaml", healthStatus{"Degraded",
			"WAL archiving is failing: unexpected failure invoking barman-cloud-wal-archive: exit status 4 (Cluster in healthy state)"}},
		// Hibernation requested by annotation, before the operator's condition.
		{"cluster-hibernation-requested.yaml", healthStatus{"Suspended", "Cluster is hibernated (cnpg.io/hibernation: on)"}},
		{"cluster-waiting-for-user.yaml", healthStatus{"Suspended",
			"Waiting for user action: User must issue a supervised switchover"}},
		{"cluster-hibernated.yaml", healthStatus{"Suspended", "Cluster is hibernated (cnpg.io/hibernation: on)"}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yaml"), func(t *testing.T) {
			got, err := runHealthScript(script, readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// ContinuousArchiving=False is Degraded in every phase that is not already
// a failure; True changes nothing.
func TestClusterHealthArchivingCondition(t *testing.T) {
	script := readHealthScript(t, "postgresql.cnpg.io_Cluster.lua")
	for _, phase := range []string{"Cluster in healthy state", "Setting up primary", "Creating a new replica", "Failing over"} {
		for status, want := range map[string]string{"False": "Degraded", "True": ""} {
			obj := map[string]any{
				"spec": map[string]any{"instances": float64(1)},
				"status": map[string]any{"phase": phase, "readyInstances": float64(1), "conditions": []any{
					map[string]any{"type": "ContinuousArchiving", "status": status, "message": "boom"},
				}},
			}
			got, err := runHealthScript(script, obj)
			if err != nil {
				t.Fatal(err)
			}
			if want == "" {
				if got.Status == "Degraded" {
					t.Errorf("%s, archiving %s: %+v", phase, status, got)
				}
			} else if got.Status != want || got.Message != "WAL archiving is failing: boom ("+phase+")" {
				t.Errorf("%s, archiving %s: %+v", phase, status, got)
			}
		}
	}
}

// TestClusterHealthPhases runs the script over every phase CNPG 1.30
// defines, so that a phase is classified on purpose, and an unknown future
// phase falls back to Progressing.
func TestClusterHealthPhases(t *testing.T) {
	script := readHealthScript(t, "postgresql.cnpg.io_Cluster.lua")
	phases := map[string]string{
		"Switchover in progress":                                   "Progressing",
		"Failing over":                                             "Progressing",
		"Setting up primary":                                       "Progressing",
		"Creating a new replica":                                   "Progressing",
		"Upgrading cluster":                                        "Progressing",
		"Upgrading Postgres major version":                         "Progressing",
		"Cluster upgrade delayed":                                  "Progressing",
		"Waiting for user action":                                  "Suspended",
		"Primary instance is being restarted in-place":             "Progressing",
		"Primary instance is being restarted without a switchover": "Progressing",
		"Cluster in healthy state":                                 "Healthy",
		"Cluster cannot proceed to reconciliation due to an unknown plugin being required":        "Progressing",
		"Cluster cannot proceed to reconciliation due to an error while interacting with plugins": "Progressing",
		"Cluster has incomplete or invalid image catalog":                                         "Degraded",
		"Cluster is unrecoverable and needs manual intervention":                                  "Degraded",
		"Cluster cannot execute instance online upgrade due to missing architecture binary":       "Degraded",
		"Waiting for the instances to become active":                                              "Progressing",
		"Online upgrade in progress":                                                              "Progressing",
		"Applying configuration":                                                                  "Progressing",
		"Promoting to primary cluster":                                                            "Progressing",
		"Unable to create required cluster objects":                                               "Degraded",
		"Invalid cluster definition":                                                              "Degraded",
		"Some phase a later CNPG adds":                                                            "Progressing",
	}
	for phase, want := range phases {
		obj := map[string]any{
			"spec":   map[string]any{"instances": float64(3)},
			"status": map[string]any{"phase": phase, "readyInstances": float64(3)},
		}
		got, err := runHealthScript(script, obj)
		if err != nil {
			t.Fatalf("%s: %v", phase, err)
		}
		if got.Status != want {
			t.Errorf("phase %q: status %s, want %s", phase, got.Status, want)
		}
		if !strings.HasPrefix(got.Message, phase) {
			t.Errorf("phase %q: message %q does not start with the phase", phase, got.Message)
		}
	}
}

func TestScheduledBackupHealth(t *testing.T) {
	script := readHealthScript(t, "postgresql.cnpg.io_ScheduledBackup.lua")
	tests := []struct {
		file string
		want healthStatus
	}{
		{"scheduledbackup-new.yaml", healthStatus{"Healthy", "Waiting for the first schedule"}},
		{"scheduledbackup-scheduled.yaml", healthStatus{"Healthy",
			"Last backup scheduled at 2026-11-27T03:00:00Z, next at 2026-11-28T03:00:00Z"}},
		{"scheduledbackup-suspended.yaml", healthStatus{"Healthy", "Scheduled backups are suspended"}},
		{"scheduledbackup-invalid.yaml", healthStatus{"Degraded",
			"the resource failed admission validation on: spec.schedule (see the operator logs for details)"}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yaml"), func(t *testing.T) {
			got, err := runHealthScript(script, readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestObjectStoreHealth(t *testing.T) {
	script := readHealthScript(t, "barmancloud.cnpg.io_ObjectStore.lua")
	tests := []struct {
		file string
		want healthStatus
	}{
		{"objectstore-new.yaml", healthStatus{"Healthy", "No backup recorded yet"}},
		{"objectstore-ok.yaml", healthStatus{"Healthy",
			"Last backup succeeded for feature-1-3fa9c2-20261126t074238z-ab12"}},
		{"objectstore-failing.yaml", healthStatus{"Degraded",
			"Backups failing for feature-1-3fa9c2-20261126t074238z-ab12 (last backup failed at 2026-11-28T03:00:05Z)"}},
		{"objectstore-never-succeeded.yaml", healthStatus{"Degraded",
			"Backups failing for feature-1-3fa9c2-20261126t074238z-ab12 (last backup failed at 2026-11-26T08:00:00Z)"}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yaml"), func(t *testing.T) {
			got, err := runHealthScript(script, readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestHealthScriptsUseNoStringLibrary guards the sandbox assumption: the
// harness above skips the string library like Argo CD does, so a script
// using string.* must fail here rather than in the cluster.
func TestHealthScriptsUseNoStringLibrary(t *testing.T) {
	if _, err := runHealthScript(`local hs = {} hs.status = string.upper("healthy") return hs`, nil); err == nil {
		t.Fatal("string library is available in the test sandbox; Argo CD does not load it for argocd-cm scripts")
	}
}

func readFixture(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path.Join("testdata", "health", name))
	if err != nil {
		t.Fatal(err)
	}
	return yamlToMap(t, b)
}

// healthPatchHeader is the comment and object head of argocd-cm-health.yaml;
// renderHealthPatch appends one literal block per health/*.lua file.
const healthPatchHeader = `# Argo CD health checks for the CloudNativePG objects of offshoot
# environments: a patch for the existing argocd-cm ConfigMap.
#
#   kubectl patch configmap argocd-cm -n argocd --type merge \
#     --patch-file manifests/argocd-cm-health.yaml
#
# (or list it under ` + "`patches:`" + ` of a kustomization that installs Argo CD).
# The scripts are copies of manifests/health/*.lua, checked by
# manifests/health_test.go; edit the .lua files, then regenerate with
#   go test ./manifests/ -run TestHealthPatchMatchesLuaFiles -update
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
data:
`

// luaScripts returns the health scripts by argocd-cm key.
func luaScripts(t *testing.T) map[string]string {
	t.Helper()
	scripts := map[string]string{}
	names, err := fs.Glob(HealthScripts(), "*.lua")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 3 {
		t.Fatalf("health/*.lua: %d scripts, want 3 (Cluster, ScheduledBackup, ObjectStore)", len(names))
	}
	for _, name := range names {
		scripts[healthKeyPrefix+strings.TrimSuffix(name, ".lua")] = readHealthScript(t, name)
	}
	return scripts
}

func renderHealthPatch(scripts map[string]string) []byte {
	keys := make([]string, 0, len(scripts))
	for k := range scripts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString(healthPatchHeader)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: |\n", k)
		for _, line := range strings.Split(strings.TrimSuffix(scripts[k], "\n"), "\n") {
			if line != "" {
				b.WriteString("    " + line)
			}
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// TestHealthPatchMatchesLuaFiles makes sure the scripts embedded in the
// argocd-cm patch are exactly the health/*.lua files.
func TestHealthPatchMatchesLuaFiles(t *testing.T) {
	scripts := luaScripts(t)
	if *update {
		if err := os.WriteFile("argocd-cm-health.yaml", renderHealthPatch(scripts), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("rewrote argocd-cm-health.yaml; rebuild for the embedded copy to follow")
		return
	}
	var cm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.UnmarshalStrict(HealthPatch(), &cm); err != nil {
		t.Fatalf("argocd-cm-health.yaml: %v", err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Metadata.Name != "argocd-cm" || cm.Metadata.Namespace != "argocd" {
		t.Errorf("patch is for %s %s %s/%s, want v1 ConfigMap argocd/argocd-cm",
			cm.APIVersion, cm.Kind, cm.Metadata.Namespace, cm.Metadata.Name)
	}
	const fix = "edit manifests/health/*.lua, then: go test ./manifests/ -run TestHealthPatchMatchesLuaFiles -update"
	for key, script := range scripts {
		got, ok := cm.Data[key]
		if !ok {
			t.Errorf("argocd-cm-health.yaml lacks %s (%s)", key, fix)
			continue
		}
		if got != script {
			t.Errorf("argocd-cm-health.yaml %s differs from health/%s.lua (%s)",
				key, strings.TrimPrefix(key, healthKeyPrefix), fix)
		}
	}
	for key := range cm.Data {
		if _, ok := scripts[key]; !ok {
			t.Errorf("argocd-cm-health.yaml has %s with no health/*.lua file", key)
		}
	}
	if !bytes.Equal(HealthPatch(), renderHealthPatch(scripts)) {
		t.Errorf("argocd-cm-health.yaml is not in generated form (%s)", fix)
	}
}
