package generator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/clone"
)

// Names inside the app base that the overlay patches. The base that
// offshoot init scaffolds uses them; an edited base must keep them.
const (
	BaseAppName   = "app" // Deployment, Service, Ingress and container name
	BaseImageName = "app" // image placeholder replaced by <image>:<sha>

	// Files of an environment directory.
	KustomizationFile = "kustomization.yaml"
	NamespaceFile     = "namespace.yaml"
	DatabaseFile      = "database.yaml"

	// Labels and annotations offshoot puts on every object.
	LabelPartOf          = "app.kubernetes.io/part-of"
	LabelManagedBy       = "app.kubernetes.io/managed-by"
	AnnotationBranch     = "offshoot.dev/branch"
	AnnotationParent     = "offshoot.dev/parent-branch"
	AnnotationSHA        = "offshoot.dev/sha"
	WaveNamespace        = clone.WaveNamespace
	DatabaseURLEnv       = "DATABASE_URL"
	cnpgAppSecretSuffix  = "-app"
	cnpgAppSecretURIKey  = "uri"
	kustomizeAPIVersion  = "kustomize.config.k8s.io/v1beta1"
	kustomizationKind    = "Kustomization"
	namespaceAPIVersion  = "v1"
	namespaceKindName    = "Namespace"
	deploymentAPIVersion = "apps/v1"
)

// Render produces the files of one environment directory (relative to it)
// from its metadata and the config. It is a pure function: the same
// metadata and config give the same bytes.
func Render(cfg *Config, env *Environment) (map[string][]byte, error) {
	spec := clone.Spec{
		Env:        env.Name,
		Namespace:  env.Namespace,
		Cluster:    env.Database.Cluster,
		ServerName: env.Database.ServerName,
		Source:     env.Database.Source,
		Protected:  env.Protected,
	}
	db, err := clone.Build(cfg.Database, spec)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	if files[EnvFile], err = yaml.Marshal(env); err != nil {
		return nil, err
	}
	if files[NamespaceFile], err = yaml.Marshal(namespace(env)); err != nil {
		return nil, err
	}
	var dbYAML bytes.Buffer
	for i, obj := range db.List() {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			dbYAML.WriteString("---\n")
		}
		dbYAML.Write(b)
	}
	files[DatabaseFile] = dbYAML.Bytes()
	k, err := kustomization(cfg, env)
	if err != nil {
		return nil, err
	}
	if files[KustomizationFile], err = yaml.Marshal(k); err != nil {
		return nil, err
	}
	return files, nil
}

type object struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Metadata   clone.ObjectMeta `json:"metadata"`
}

func namespace(env *Environment) object {
	ann := map[string]string{clone.SyncWaveAnnotation: WaveNamespace}
	if env.Protected {
		ann[clone.SyncOptionsAnnotation] = "Prune=false,Delete=false"
	}
	return object{
		APIVersion: namespaceAPIVersion,
		Kind:       namespaceKindName,
		Metadata:   clone.ObjectMeta{Name: env.Namespace, Annotations: ann},
	}
}

func kustomization(cfg *Config, env *Environment) (*types.Kustomization, error) {
	ann := map[string]string{AnnotationBranch: env.Branch}
	if env.Parent != "" {
		ann[AnnotationParent] = env.Parent
	}
	k := &types.Kustomization{
		TypeMeta:  types.TypeMeta{APIVersion: kustomizeAPIVersion, Kind: kustomizationKind},
		Namespace: env.Namespace,
		Resources: []string{NamespaceFile, DatabaseFile, path.Join("..", "..", cfg.App.Base)},
		Labels: []types.Label{{Pairs: map[string]string{
			LabelPartOf:    cfg.App.Name,
			LabelManagedBy: "offshoot",
			AppLabel:       env.Name,
		}}},
		CommonAnnotations: ann,
		Images:            []types.Image{{Name: BaseImageName, NewName: cfg.App.Image, NewTag: env.SHA}},
	}
	host := cfg.Host(env.Name)
	ingressOps := []map[string]any{{"op": "replace", "path": "/spec/rules/0/host", "value": host}}
	if cfg.App.TLS == nil || *cfg.App.TLS {
		ingressOps = append(ingressOps, map[string]any{"op": "replace", "path": "/spec/tls/0/hosts/0", "value": host})
	}
	deployOps := []map[string]any{{"op": "replace", "path": "/spec/template/spec/containers/0/ports/0/containerPort", "value": cfg.App.Port}}
	deploySMP := map[string]any{
		"apiVersion": deploymentAPIVersion,
		"kind":       "Deployment",
		"metadata":   map[string]any{"name": BaseAppName, "annotations": map[string]string{AnnotationSHA: env.SHA}},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{
			"name": BaseAppName,
			"env": []any{map[string]any{
				"name": DatabaseURLEnv,
				"valueFrom": map[string]any{"secretKeyRef": map[string]any{
					"name": env.Database.Cluster + cnpgAppSecretSuffix,
					"key":  cnpgAppSecretURIKey,
				}},
			}},
		}}}}},
	}
	for _, p := range []struct {
		kind string
		body any
	}{{"Ingress", ingressOps}, {"Deployment", deployOps}, {"Deployment", deploySMP}} {
		b, err := json.Marshal(p.body)
		if err != nil {
			return nil, err
		}
		k.Patches = append(k.Patches, types.Patch{
			Patch:  string(b),
			Target: &types.Selector{ResId: resid.ResId{Gvk: resid.Gvk{Kind: p.kind}, Name: BaseAppName}},
		})
	}
	return k, nil
}

// checkBuilt checks the fully built objects of an environment: everything is
// in its namespace, and its database archives only into its own serverName.
func checkBuilt(cfg *Config, env *Environment, objs []map[string]any) error {
	var sawNS, sawCluster, sawDeploy bool
	for _, o := range objs {
		kind, _ := o["kind"].(string)
		meta, _ := o["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		ns, _ := meta["namespace"].(string)
		switch {
		case kind == namespaceKindName:
			if name != env.Namespace {
				return fmt.Errorf("environment %q would create namespace %q, not its own %q", env.Name, name, env.Namespace)
			}
			sawNS = true
			continue
		case ns != env.Namespace:
			return fmt.Errorf("environment %q: %s/%s is in namespace %q, not %q", env.Name, kind, name, ns, env.Namespace)
		}
		switch kind {
		case "Cluster":
			sawCluster = true
			if err := checkClusterArchive(env, o); err != nil {
				return err
			}
		case "Deployment":
			if name == BaseAppName {
				sawDeploy = true
				want := cfg.App.Image + ":" + env.SHA
				if got := firstImage(o); got != want {
					return fmt.Errorf("environment %q: Deployment %s runs image %q, want %q (does the base use image %q?)", env.Name, name, got, want, BaseImageName)
				}
			}
		}
	}
	switch {
	case !sawNS:
		return fmt.Errorf("environment %q builds no Namespace", env.Name)
	case !sawCluster:
		return fmt.Errorf("environment %q builds no CNPG Cluster", env.Name)
	case !sawDeploy:
		return fmt.Errorf("environment %q builds no Deployment %q (the app base must keep that name)", env.Name, BaseAppName)
	}
	return nil
}

// checkClusterArchive applies clone.CheckSafety to the Cluster as kustomize
// built it: every plugin entry and external cluster, not only the WAL
// archiver, so that no patch in the base or overlay makes it write anywhere
// but its own store and serverName.
func checkClusterArchive(env *Environment, o map[string]any) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	var c clone.Cluster
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("environment %q: built Cluster: %w", env.Name, err)
	}
	return clone.CheckSafety(clone.Spec{
		Env:        env.Name,
		Namespace:  env.Namespace,
		Cluster:    env.Database.Cluster,
		ServerName: env.Database.ServerName,
		Source:     env.Database.Source,
		Protected:  env.Protected,
	}, &c)
}

func firstImage(o map[string]any) string {
	spec, _ := o["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	ps, _ := tmpl["spec"].(map[string]any)
	cs, _ := ps["containers"].([]any)
	for _, c := range cs {
		cm, _ := c.(map[string]any)
		if cm["name"] == BaseAppName {
			img, _ := cm["image"].(string)
			return img
		}
	}
	return ""
}
