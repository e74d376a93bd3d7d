package generator

import (
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/clone"
)

// kubernetes-replicator copies nothing unless the source Secret allows
// it: the instructions (and the template) put both annotations on the
// source, with a namespace pattern that matches exactly the environments.
func TestReplicatedSourceInstructions(t *testing.T) {
	r := newMemRepo(t, InitOptions{})
	got := r.cfg.ReplicatedSourceInstructions()
	for _, want := range []string{
		"kubectl -n offshoot-system create secret generic backup-credentials --from-literal=ACCESS_KEY_ID=... --from-literal=ACCESS_SECRET_KEY=...",
		"kubectl -n offshoot-system annotate secret backup-credentials " + ReplicationAllowedAnnotation + "=true '" +
			ReplicationAllowedNamespacesAnnotation + "=^shop-[a-z0-9-]+$'",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("instructions lack %q:\n%s", want, got)
		}
	}
	re := regexp.MustCompile(r.cfg.ReplicationNamespacesPattern())
	for ns, want := range map[string]bool{
		r.cfg.Namespace("feature-1-94cc62"): true, r.cfg.Namespace("main"): true,
		"shop-": false, "kube-system": false, "other-shop-main": false, "argocd": false,
	} {
		if re.MatchString(ns) != want {
			t.Errorf("pattern %s on %q: %v, want %v", re, ns, !want, want)
		}
	}
	// The scaffolded offshoot.yaml says the same.
	tmpl := string(r.fs[ConfigFile].Data)
	for _, want := range []string{ReplicationAllowedAnnotation + "=true", ReplicationAllowedNamespacesAnnotation + "=^shop-[a-z0-9-]+$"} {
		if !strings.Contains(tmpl, want) {
			t.Errorf("offshoot.yaml does not tell to set %s on the source Secret", want)
		}
	}
	r.cfg.Database.ObjectStore.Credentials.Source = clone.SourceExisting
	if r.cfg.ReplicatedSourceInstructions() != "" {
		t.Error("no instructions without a replicated source")
	}
}

// {env} gives every environment its own source Secret / remote key.
func TestCredentialsPerEnvironment(t *testing.T) {
	r := newMemRepo(t, InitOptions{Root: "master"})
	r.cfg.Database.ObjectStore.Credentials.Replicated.From = "offshoot-system/s3-{env}"
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r.must(Request{Op: OpSync, Branch: "master", SHA: "1a2b3c4"})
	db := string(r.fs["envs/master/"+DatabaseFile].Data)
	if !strings.Contains(db, "replicator.v1.mittwald.de/replicate-from: offshoot-system/s3-master") {
		t.Fatalf("database.yaml:\n%s", db)
	}
	if !strings.Contains(r.cfg.ReplicatedSourceInstructions(), "=^shop-{env}$'") {
		t.Fatal("a per-environment source allows only its own namespace")
	}
	es := newMemRepo(t, InitOptions{Root: "master"})
	es.cfg.Database.ObjectStore.Credentials = clone.Credentials{
		SecretName: "s3", AccessKeyIDKey: "id", SecretAccessKeyKey: "key", Source: clone.SourceExternalSecret,
		ExternalSecret: &clone.ExternalSecretSource{StoreName: "vault", RemoteKey: "offshoot/{env}/s3"},
	}
	es.must(Request{Op: OpSync, Branch: "master", SHA: "1a2b3c4"})
	var first map[string]any
	if err := yaml.Unmarshal([]byte(strings.Split(string(es.fs["envs/master/"+DatabaseFile].Data), "\n---\n")[0]), &first); err != nil {
		t.Fatal(err)
	}
	data := first["spec"].(map[string]any)["data"].([]any)
	if k := data[0].(map[string]any)["remoteRef"].(map[string]any)["key"]; k != "offshoot/master/s3" {
		t.Fatalf("remoteKey = %v", k)
	}
}
