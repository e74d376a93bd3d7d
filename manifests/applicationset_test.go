package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"text/template"

	"sigs.k8s.io/yaml"
)

const resourcesFinalizer = "resources-finalizer.argocd.argoproj.io"

func readArgoCD(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := fs.ReadFile(ArgoCD(), name)
	if err != nil {
		t.Fatal(err)
	}
	return yamlToMap(t, b)
}

// get walks a decoded YAML object along keys (map keys, or decimal indexes
// into lists) and returns nil when a step is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		switch c := v.(type) {
		case map[string]any:
			v = c[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

func getString(t *testing.T, v any, keys ...string) string {
	t.Helper()
	s, ok := get(v, keys...).(string)
	if !ok {
		t.Fatalf("%s: %#v is not a string", strings.Join(keys, "."), get(v, keys...))
	}
	return s
}

// gitFileParams returns the template parameters Argo CD v2.14's Git files
// generator produces, with goTemplate: true, for one matched file
// (applicationset/generators/git.go generateParamsFromGitFile): the file's
// top-level keys unflattened, plus .path.
func gitFileParams(t *testing.T, filePath string, content []byte) map[string]any {
	t.Helper()
	params := yamlToMap(t, content)
	dir := path.Dir(filePath)
	params["path"] = map[string]any{
		"path":               dir,
		"basename":           path.Base(dir),
		"filename":           path.Base(filePath),
		"basenameNormalized": path.Base(dir), // SanitizeName: identity for DNS-1035 env names
		"filenameNormalized": "env.yaml",
		"segments":           []any{"envs", path.Base(dir)},
	}
	return params
}

// execute renders one Go-template string as the ApplicationSet controller
// does with goTemplate: true and the ApplicationSet's goTemplateOptions.
// The controller adds the sprig functions; these templates use built-ins only,
// and a template that starts using sprig fails to parse here on purpose.
func execute(text string, params map[string]any, options []string) (string, error) {
	tmpl, err := template.New("").Option(options...).Parse(text)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, params); err != nil {
		return "", err
	}
	return b.String(), nil
}

// renderStrings renders every string inside v (Argo CD 2.14 walks the
// template struct and renders each string field separately, so rendered
// values are never re-parsed as YAML).
func renderStrings(v any, params map[string]any, options []string) (any, error) {
	switch c := v.(type) {
	case string:
		return execute(c, params, options)
	case map[string]any:
		out := make(map[string]any, len(c))
		for k, item := range c {
			r, err := renderStrings(item, params, options)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(c))
		for i, item := range c {
			r, err := renderStrings(item, params, options)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// mergePatch applies a rendered templatePatch the way Argo CD 2.14 does
// (a strategic merge patch on the Application): maps merge, null deletes,
// metadata.finalizers (patchStrategy merge) is a set union, other lists
// are replaced.
func mergePatch(dst, patch map[string]any, at string) {
	for k, pv := range patch {
		p := at + "/" + k
		switch pv := pv.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			dm, ok := dst[k].(map[string]any)
			if !ok {
				dm = map[string]any{}
			}
			mergePatch(dm, pv, p)
			dst[k] = dm
		case []any:
			if p == "/metadata/finalizers" {
				list, _ := dst[k].([]any)
				for _, item := range pv {
					if !slices.Contains(list, item) {
						list = append(list, item)
					}
				}
				dst[k] = list
			} else {
				dst[k] = pv
			}
		default:
			dst[k] = pv
		}
	}
}

// renderApplication produces the Application the ApplicationSet controller
// would generate for params (applicationset/controllers/template
// GenerateApplications in Argo CD 2.14): render the template, add the
// resources finalizer unless syncPolicy.preserveResourcesOnDeletion or the
// template has finalizers, render and apply templatePatch, keep the
// template's project, put the Application in the ApplicationSet's namespace.
func renderApplication(appset map[string]any, namespace string, params map[string]any) (map[string]any, error) {
	var options []string
	for _, o := range get(appset, "spec", "goTemplateOptions").([]any) {
		options = append(options, o.(string))
	}
	rendered, err := renderStrings(get(appset, "spec", "template"), params, options)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	tmpl := rendered.(map[string]any)
	meta, _ := tmpl["metadata"].(map[string]any)
	app := map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Application",
		"metadata":   meta,
		"spec":       tmpl["spec"],
	}
	preserve, _ := get(appset, "spec", "syncPolicy", "preserveResourcesOnDeletion").(bool)
	if fin, _ := meta["finalizers"].([]any); !preserve && len(fin) == 0 {
		meta["finalizers"] = []any{resourcesFinalizer}
	}
	if patchTmpl, ok := get(appset, "spec", "templatePatch").(string); ok {
		text, err := execute(patchTmpl, params, options)
		if err != nil {
			return nil, fmt.Errorf("templatePatch: %w", err)
		}
		var patch map[string]any
		if err := yaml.Unmarshal([]byte(text), &patch); err != nil {
			return nil, fmt.Errorf("templatePatch renders invalid YAML %q: %w", text, err)
		}
		project := get(app, "spec", "project")
		mergePatch(app, patch, "")
		app["spec"].(map[string]any)["project"] = project
	}
	app["metadata"].(map[string]any)["namespace"] = namespace
	return app, nil
}

// envFile reads a sample env.yaml from testdata/envs/<name>/env.yaml.
func envFile(t *testing.T, name string) (string, []byte) {
	t.Helper()
	p := path.Join("envs", name, "env.yaml")
	b, err := os.ReadFile(filepath.Join("testdata", p))
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestApplicationSetShape(t *testing.T) {
	appset := readArgoCD(t, "applicationset.yaml")
	project := readArgoCD(t, "appproject.yaml")

	if got := getString(t, appset, "metadata", "name"); got != "offshoot-environments" {
		t.Errorf("name %q", got)
	}
	if get(appset, "spec", "goTemplate") != true {
		t.Error("spec.goTemplate must be true")
	}
	if opts, _ := get(appset, "spec", "goTemplateOptions").([]any); !slices.Contains(opts, any("missingkey=error")) {
		t.Errorf("goTemplateOptions %v lacks missingkey=error", opts)
	}
	gens, _ := get(appset, "spec", "generators").([]any)
	if len(gens) != 1 {
		t.Fatalf("%d generators, want exactly the Git files generator", len(gens))
	}
	files, _ := get(gens[0], "git", "files").([]any)
	if len(files) != 1 || getString(t, files[0], "path") != "envs/*/env.yaml" {
		t.Errorf("git files %v, want [{path: envs/*/env.yaml}]", files)
	}
	if get(gens[0], "git", "directories") != nil {
		t.Error("git generator must use files, not directories")
	}

	repo := getString(t, gens[0], "git", "repoURL")
	if got := getString(t, appset, "spec", "template", "spec", "source", "repoURL"); got != repo {
		t.Errorf("source.repoURL %q != generator repoURL %q", got, repo)
	}
	if got := getString(t, project, "spec", "sourceRepos", "0"); got != repo {
		t.Errorf("AppProject sourceRepos[0] %q != generator repoURL %q", got, repo)
	}
	rev := getString(t, gens[0], "git", "revision")
	if got := getString(t, appset, "spec", "template", "spec", "source", "targetRevision"); got != rev {
		t.Errorf("targetRevision %q != generator revision %q: Applications would deploy another revision than the one listed", got, rev)
	}

	// Deletion safety.
	if get(appset, "spec", "syncPolicy", "preserveResourcesOnDeletion") != true {
		t.Error("syncPolicy.preserveResourcesOnDeletion must be true, or the controller puts the resources finalizer on protected envs too")
	}
	if p := get(appset, "spec", "syncPolicy", "applicationsSync"); p != nil && p != "sync" {
		t.Logf("applicationsSync %v: env teardown by removing envs/<name>/ no longer deletes Applications", p)
	}
	if f := get(appset, "spec", "template", "metadata", "finalizers"); f != nil {
		t.Errorf("template.metadata.finalizers %v: the finalizer must come from templatePatch only", f)
	}
	auto := get(appset, "spec", "template", "spec", "syncPolicy", "automated")
	if get(auto, "prune") != true || get(auto, "selfHeal") != true {
		t.Errorf("automated %v: want prune and selfHeal", auto)
	}
	if get(auto, "allowEmpty") == true {
		t.Error("automated.allowEmpty must stay false: an empty render must never prune an environment")
	}
	if get(appset, "spec", "template", "spec", "syncPolicy", "retry", "backoff") == nil {
		t.Error("syncPolicy.retry.backoff missing")
	}
	opts, _ := get(appset, "spec", "template", "spec", "syncPolicy", "syncOptions").([]any)
	if slices.Contains(opts, any("CreateNamespace=true")) {
		t.Error("CreateNamespace=true: the env directory ships its own Namespace")
	}

	// Project and destination agree with the AppProject.
	if got, want := getString(t, appset, "spec", "template", "spec", "project"), getString(t, project, "metadata", "name"); got != want {
		t.Errorf("template project %q, AppProject %q", got, want)
	}
	if got, want := getString(t, appset, "spec", "template", "spec", "destination", "server"),
		getString(t, project, "spec", "destinations", "0", "server"); got != want {
		t.Errorf("destination server %q, AppProject allows %q", got, want)
	}
}

func TestApplicationSetRender(t *testing.T) {
	appset := readArgoCD(t, "applicationset.yaml")
	project := readArgoCD(t, "appproject.yaml")
	nsGlob := getString(t, project, "spec", "destinations", "0", "namespace")

	tests := []struct {
		env         string
		name        string
		labels      map[string]any
		annotations map[string]any
		finalizers  []any
	}{
		{
			env:  "feature-1-3fa9c2",
			name: "shop-feature-1-3fa9c2",
			labels: map[string]any{
				"app.kubernetes.io/managed-by": "offshoot",
				"offshoot.dev/env":             "feature-1-3fa9c2",
				"offshoot.dev/parent-env":      "staging",
				"offshoot.dev/protected":       "false",
			},
			annotations: map[string]any{
				"offshoot.dev/branch":                        "feature_1",
				"offshoot.dev/parent-branch":                 "staging",
				"offshoot.dev/sha":                           "7a8b9c0",
				"link.argocd.argoproj.io/external-link":      "https://feature-1-3fa9c2.preview.example.com",
				"argocd.argoproj.io/manifest-generate-paths": ".;/base",
			},
			finalizers: []any{resourcesFinalizer},
		},
		{
			env:  "staging",
			name: "shop-staging",
			labels: map[string]any{
				"app.kubernetes.io/managed-by": "offshoot",
				"offshoot.dev/env":             "staging",
				"offshoot.dev/parent-env":      "main",
				"offshoot.dev/protected":       "true",
			},
			annotations: map[string]any{
				"offshoot.dev/branch":                        "staging",
				"offshoot.dev/parent-branch":                 "main",
				"offshoot.dev/sha":                           "5d6e7f8",
				"link.argocd.argoproj.io/external-link":      "https://staging.preview.example.com",
				"argocd.argoproj.io/manifest-generate-paths": ".;/base",
			},
		},
		{
			env:  "main", // root: empty parent
			name: "shop-main",
			labels: map[string]any{
				"app.kubernetes.io/managed-by": "offshoot",
				"offshoot.dev/env":             "main",
				"offshoot.dev/parent-env":      "",
				"offshoot.dev/protected":       "true",
			},
			annotations: map[string]any{
				"offshoot.dev/branch":                        "main",
				"offshoot.dev/parent-branch":                 "",
				"offshoot.dev/sha":                           "1234567",
				"link.argocd.argoproj.io/external-link":      "https://main.preview.example.com",
				"argocd.argoproj.io/manifest-generate-paths": ".;/base",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			p, b := envFile(t, tt.env)
			params := gitFileParams(t, p, b)
			app, err := renderApplication(appset, "argocd", params)
			if err != nil {
				t.Fatal(err)
			}
			if got := getString(t, app, "metadata", "name"); got != tt.name {
				t.Errorf("name %q, want %q", got, tt.name)
			}
			if got := getString(t, app, "metadata", "namespace"); got != "argocd" {
				t.Errorf("Application namespace %q", got)
			}
			if got := get(app, "metadata", "labels"); !reflect.DeepEqual(got, tt.labels) {
				t.Errorf("labels\n got %v\nwant %v", got, tt.labels)
			}
			if got := get(app, "metadata", "annotations"); !reflect.DeepEqual(got, tt.annotations) {
				t.Errorf("annotations\n got %v\nwant %v", got, tt.annotations)
			}
			got, _ := get(app, "metadata", "finalizers").([]any)
			if !reflect.DeepEqual(got, tt.finalizers) && (len(got) != 0 || len(tt.finalizers) != 0) {
				t.Errorf("finalizers %v, want %v", got, tt.finalizers)
			}
			if got, want := getString(t, app, "spec", "source", "path"), "envs/"+tt.env; got != want {
				t.Errorf("source.path %q, want %q", got, want)
			}
			ns := getString(t, app, "spec", "destination", "namespace")
			if ns != tt.name {
				t.Errorf("destination.namespace %q, want %q", ns, tt.name)
			}
			if ok, _ := path.Match(nsGlob, ns); !ok {
				t.Errorf("destination namespace %q not allowed by AppProject %q", ns, nsGlob)
			}
			if got := getString(t, app, "spec", "project"); got != "offshoot" {
				t.Errorf("project %q", got)
			}
			for _, s := range collectStrings(app) {
				if strings.Contains(s, "{{") || strings.Contains(s, "<no value>") {
					t.Errorf("unrendered value %q", s)
				}
			}
		})
	}
}

func collectStrings(v any) []string {
	switch c := v.(type) {
	case string:
		return []string{c}
	case map[string]any:
		var out []string
		for _, item := range c {
			out = append(out, collectStrings(item)...)
		}
		return out
	case []any:
		var out []string
		for _, item := range c {
			out = append(out, collectStrings(item)...)
		}
		return out
	}
	return nil
}

// TestApplicationSetRenderMissingKey: with missingkey=error, an env.yaml
// lacking a field the template uses is a render error, which makes the
// controller stop before creating, updating or deleting any Application.
func TestApplicationSetRenderMissingKey(t *testing.T) {
	appset := readArgoCD(t, "applicationset.yaml")
	p, b := envFile(t, "feature-1-3fa9c2")
	for _, key := range []string{"namespace", "url", "protected", "parentEnv"} {
		params := gitFileParams(t, p, b)
		delete(params, key)
		_, err := renderApplication(appset, "argocd", params)
		if err == nil || !strings.Contains(err.Error(), "map has no entry for key") {
			t.Errorf("without %s: err = %v, want a missing-key error", key, err)
		}
	}
}

// TestApplicationSetRenderRawBranch: branch names are not label-safe and may
// hold YAML or template syntax; they only go to annotations and info, as
// plain strings.
func TestApplicationSetRenderRawBranch(t *testing.T) {
	appset := readArgoCD(t, "applicationset.yaml")
	p, b := envFile(t, "feature-1-3fa9c2")
	params := gitFileParams(t, p, b)
	branch := `Feature/ÜBER_'quo"te: {{ .x }} #1`
	params["branch"] = branch
	app, err := renderApplication(appset, "argocd", params)
	if err != nil {
		t.Fatal(err)
	}
	if got := getString(t, app, "metadata", "annotations", "offshoot.dev/branch"); got != branch {
		t.Errorf("branch annotation %q, want %q", got, branch)
	}
	for k, v := range get(app, "metadata", "labels").(map[string]any) {
		if v == branch {
			t.Errorf("label %s carries the raw branch", k)
		}
	}
}

// TestApplicationSetRenderProtectedNotBool: a `protected` that is not a
// YAML boolean (e.g. quoted) must err on the side of keeping data.
func TestApplicationSetRenderProtectedNotBool(t *testing.T) {
	appset := readArgoCD(t, "applicationset.yaml")
	p, b := envFile(t, "feature-1-3fa9c2")
	params := gitFileParams(t, p, b)
	params["protected"] = "false"
	app, err := renderApplication(appset, "argocd", params)
	if err != nil {
		t.Fatal(err)
	}
	if f := get(app, "metadata", "finalizers"); f != nil {
		t.Errorf("protected: \"false\" (a string) got finalizers %v; only a real false may cascade", f)
	}
}

// TestApplicationSetRendersGeneratorGoldens renders the env.yaml files the
// generator's golden tests produce (when present), so the template and the
// metadata writer cannot drift apart.
func TestApplicationSetRendersGeneratorGoldens(t *testing.T) {
	matches, _ := filepath.Glob(filepath.Join("..", "generator", "testdata", "golden", "*", "env.yaml"))
	if len(matches) == 0 {
		t.Skip("no generator golden env.yaml files")
	}
	appset := readArgoCD(t, "applicationset.yaml")
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		env := yamlToMap(t, b)
		name, _ := env["name"].(string)
		params := gitFileParams(t, path.Join("envs", name, "env.yaml"), b)
		app, err := renderApplication(appset, "argocd", params)
		if err != nil {
			t.Errorf("%s: %v", m, err)
			continue
		}
		if got := get(app, "metadata", "name"); got != env["namespace"] {
			t.Errorf("%s: Application %v, want its namespace %v", m, got, env["namespace"])
		}
		_, hasFinalizer := get(app, "metadata", "finalizers").([]any)
		if hasFinalizer != (env["protected"] == false) {
			t.Errorf("%s: protected=%v but finalizer present=%v", m, env["protected"], hasFinalizer)
		}
		if sha, ok := env["sha"].(string); !ok || get(app, "metadata", "annotations", "offshoot.dev/sha") != sha {
			t.Errorf("%s: sha %#v must be a YAML string (quote all-digit shas) and land verbatim in the annotation", m, env["sha"])
		}
	}
}

// TestAppProjectWhitelistsEnvKinds checks that every kind an environment
// directory contains (the generator's golden env directories plus the app
// base they include, when present) is allowed by the AppProject.
func TestAppProjectWhitelistsEnvKinds(t *testing.T) {
	project := readArgoCD(t, "appproject.yaml")
	allowed := map[string]bool{}
	for _, list := range []string{"clusterResourceWhitelist", "namespaceResourceWhitelist"} {
		entries, _ := get(project, "spec", list).([]any)
		for _, e := range entries {
			allowed[getString(t, e, "group")+"/"+getString(t, e, "kind")] = true
		}
	}
	for _, want := range []string{
		"/Namespace", "apps/Deployment", "/Service", "/Secret", "/ConfigMap",
		"networking.k8s.io/Ingress", "postgresql.cnpg.io/Cluster", "postgresql.cnpg.io/ScheduledBackup",
		"barmancloud.cnpg.io/ObjectStore", "external-secrets.io/ExternalSecret",
		"batch/Job", "/ServiceAccount", "rbac.authorization.k8s.io/Role", "rbac.authorization.k8s.io/RoleBinding",
	} {
		if !allowed[want] {
			t.Errorf("AppProject does not allow %s", want)
		}
	}

	var files []string
	for _, pattern := range []string{
		filepath.Join("..", "generator", "testdata", "golden", "*", "*.yaml"),
		filepath.Join("..", "templates", "envrepo", "base", "*", "*.yaml"),
	} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Skip("no generator golden or template files")
	}
	seen := 0
	for _, f := range files {
		switch filepath.Base(f) {
		case "kustomization.yaml", "env.yaml":
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(b, []byte("\n---")) {
			var tm struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &tm); err != nil || tm.Kind == "" {
				continue
			}
			group := ""
			if i := strings.LastIndex(tm.APIVersion, "/"); i >= 0 {
				group = tm.APIVersion[:i]
			}
			seen++
			if !allowed[group+"/"+tm.Kind] {
				t.Errorf("%s: %s %s is not allowed by the AppProject: Argo CD would refuse to sync it", f, tm.APIVersion, tm.Kind)
			}
		}
	}
	t.Logf("%d objects from %d files checked", seen, len(files))
}

// jsonRoundTrip normalises a value to what JSON decoding gives.
func jsonRoundTrip(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
