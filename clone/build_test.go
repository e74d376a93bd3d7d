package clone_test

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/clone"
	"github.com/offshoot-dev/offshoot/internal/crdschema"
)

func settings() clone.Settings {
	s := clone.DefaultSettings()
	s.ObjectStore.DestinationPath = "s3://backups/offshoot"
	s.ObjectStore.EndpointURL = "http://minio:9000"
	return s
}

func rootSpec() clone.Spec {
	return clone.Spec{Env: "main", Namespace: "shop-main", Cluster: "main-pg1", ServerName: "main-20261126t090000z-abcd", Protected: true}
}

func childSpec() clone.Spec {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	return clone.Spec{
		Env: "feature-1", Namespace: "shop-feature-1", Cluster: "feature-1-pg1", ServerName: "feature-1-20261126t090100z-0123",
		Source: &clone.Source{Env: "staging", Branch: "staging", ServerName: "staging-20261126t090000z-beef", TargetTime: &at},
	}
}

func marshalAll(t *testing.T, o clone.Objects) []byte {
	t.Helper()
	var docs []string
	for _, obj := range o.List() {
		b, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	return []byte(strings.Join(docs, "---\n"))
}

// Every object offshoot emits is accepted by the real CRD schemas of CNPG
// v1.30.0 and plugin-barman-cloud v0.15.0, with unknown fields rejected.
func TestObjectsPassCRDSchemas(t *testing.T) {
	v := crdschema.CNPG(t)
	for name, tc := range map[string]struct {
		set  func(*clone.Settings)
		spec clone.Spec
	}{
		"root":          {func(*clone.Settings) {}, rootSpec()},
		"child-pitr":    {func(*clone.Settings) {}, childSpec()},
		"storage-class": {func(s *clone.Settings) { s.StorageClass = "fast-ssd"; s.Instances = 3 }, childSpec()},
		"external-secret": {func(s *clone.Settings) {
			s.ObjectStore.Credentials.Source = clone.SourceExternalSecret
			s.ObjectStore.Credentials.ExternalSecret = &clone.ExternalSecretSource{StoreName: "vault", RemoteKey: "k"}
		}, rootSpec()},
		"replicated": {func(s *clone.Settings) {
			s.ObjectStore.Credentials.Source = clone.SourceReplicated
			s.ObjectStore.Credentials.Replicated = &clone.ReplicatedSource{From: "ops/s3"}
		}, childSpec()},
	} {
		t.Run(name, func(t *testing.T) {
			s := settings()
			tc.set(&s)
			o, err := clone.Build(s, tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			skipped, err := v.ValidateYAML(marshalAll(t, o))
			if err != nil {
				t.Fatal(err)
			}
			builtin := validateBuiltins(t, o)
			for _, k := range skipped {
				if !builtin[k] && !strings.HasPrefix(k, "ExternalSecret/") {
					t.Fatalf("%s was validated neither against a CRD nor as a built-in kind", k)
				}
			}
		})
	}
}

// The schema check is real: a field CNPG does not know is rejected.
func TestCRDCheckRejectsWhatCNPGRejects(t *testing.T) {
	v := crdschema.CNPG(t)
	o, err := clone.Build(settings(), rootSpec())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := yaml.Marshal(&o.Cluster)
	bad := strings.Replace(string(b), "isWALArchiver", "isWalArchiver", 1)
	if _, err := v.ValidateYAML([]byte(bad)); err == nil || !strings.Contains(err.Error(), "isWalArchiver") {
		t.Fatalf("want the misspelt field rejected, got %v", err)
	}
}

func TestRootAndChildShapes(t *testing.T) {
	root, err := clone.Build(settings(), rootSpec())
	if err != nil {
		t.Fatal(err)
	}
	if root.Cluster.Spec.Bootstrap.InitDB == nil || root.Cluster.Spec.Bootstrap.Recovery != nil || root.ParentArchive != nil || len(root.Cluster.Spec.ExternalClusters) != 0 {
		t.Fatalf("root must initdb with no external cluster: %+v", root.Cluster.Spec)
	}
	if root.Cluster.Metadata.Annotations[clone.SyncOptionsAnnotation] != "Prune=false,Delete=false" {
		t.Fatal("a protected environment's Cluster must never be pruned or deleted by Argo CD")
	}
	sb := root.ScheduledBackup.Spec
	if sb.Method != "plugin" || sb.Immediate == nil || !*sb.Immediate || sb.Cluster.Name != "main-pg1" || sb.PluginConfiguration.Name != clone.PluginName {
		t.Fatalf("scheduled backup: %+v", sb)
	}
	child, err := clone.Build(settings(), childSpec())
	if err != nil {
		t.Fatal(err)
	}
	cs := child.Cluster.Spec
	if cs.Bootstrap.Recovery == nil || cs.Bootstrap.Recovery.Source != clone.OriginCluster || cs.Bootstrap.InitDB != nil {
		t.Fatalf("child must recover from origin: %+v", cs.Bootstrap)
	}
	if got := cs.Bootstrap.Recovery.RecoveryTarget.TargetTime; got != "2026-11-20T10:00:00Z" {
		t.Fatalf("targetTime = %q", got)
	}
	ec := cs.ExternalClusters[0]
	if ec.Name != clone.OriginCluster || ec.Plugin.Parameters["serverName"] != "staging-20261126t090000z-beef" || ec.Plugin.Parameters["barmanObjectName"] != clone.ParentStore {
		t.Fatalf("external cluster: %+v", ec)
	}
	wal := cs.Plugins[0]
	if !*wal.IsWALArchiver || wal.Parameters["serverName"] != "feature-1-20261126t090100z-0123" || wal.Parameters["barmanObjectName"] != clone.ArchiveStore {
		t.Fatalf("WAL archiver: %+v", wal)
	}
	if child.ParentArchive == nil || child.ParentArchive.Spec.RetentionPolicy != "" || child.Archive.Spec.RetentionPolicy != "7d" {
		t.Fatal("the read-side store must have no retention; the write side keeps the configured one")
	}
	if _, ok := child.Cluster.Metadata.Annotations[clone.SyncOptionsAnnotation]; ok {
		t.Fatal("an unprotected environment's Cluster is pruned normally")
	}
}

func TestSafetyRules(t *testing.T) {
	for name, mutate := range map[string]func(*clone.Spec){
		"archives into parent":  func(s *clone.Spec) { s.ServerName = s.Source.ServerName },
		"foreign serverName":    func(s *clone.Spec) { s.ServerName = "staging-20261126t090100z-0123" },
		"bare env serverName":   func(s *clone.Spec) { s.ServerName = s.Env + "-" },
		"recovers from itself":  func(s *clone.Spec) { s.Source.Env = s.Env },
		"unknown parent server": func(s *clone.Spec) { s.Source.ServerName = "" },
		"long cluster name":     func(s *clone.Spec) { s.Cluster = strings.Repeat("c", 51) },
		"no namespace":          func(s *clone.Spec) { s.Namespace = "" },
	} {
		spec := childSpec()
		mutate(&spec)
		if _, err := clone.Build(settings(), spec); !errors.Is(err, clone.ErrUnsafe) {
			t.Errorf("%s: want ErrUnsafe, got %v", name, err)
		}
	}
}

func TestSettingsValidation(t *testing.T) {
	s := settings()
	s.ObjectStore.Credentials.Source = clone.SourceExternalSecret
	s.Instances = 0
	errs := s.Validate("database")
	var fields []string
	for _, e := range errs {
		var fe *clone.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		fields = append(fields, fe.Field)
	}
	sort.Strings(fields)
	want := []string{"database.instances", "database.objectStore.credentials.externalSecret"}
	if strings.Join(fields, ",") != strings.Join(want, ",") {
		t.Fatalf("fields = %v, want %v", fields, want)
	}
}

// validateBuiltins validates every object of a built-in kind (the guard's
// Job, ServiceAccount, Role, RoleBinding, the credentials Secret) against
// the Kubernetes types and OpenAPI schema, and returns them as Kind/name.
func validateBuiltins(t *testing.T, o clone.Objects) map[string]bool {
	t.Helper()
	done := map[string]bool{}
	for _, obj := range o.List() {
		b, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		av, _ := m["apiVersion"].(string)
		kind, _ := m["kind"].(string)
		if !crdschema.IsBuiltin(av, kind) {
			continue
		}
		if err := crdschema.ValidateBuiltin(m); err != nil {
			t.Fatal(err)
		}
		done[kind+"/"+m["metadata"].(map[string]any)["name"].(string)] = true
	}
	return done
}

// Every plugin entry of a Cluster is checked, not only the one marked
// isWALArchiver: any other Barman Cloud entry would receive archive calls
// too; the parent's store belongs to externalClusters only.
func TestEveryPluginEntryIsChecked(t *testing.T) {
	f := false
	for name, mutate := range map[string]func(*clone.Cluster){
		"second barman entry, not an archiver": func(c *clone.Cluster) {
			c.Spec.Plugins = append(c.Spec.Plugins, clone.PluginConfiguration{Name: clone.PluginName,
				Parameters: map[string]string{"barmanObjectName": clone.ParentStore, "serverName": "staging-20261126t090000z-beef"}})
		},
		"archiver marked false": func(c *clone.Cluster) { c.Spec.Plugins[0].IsWALArchiver = &f },
		"archiver through the parent's store": func(c *clone.Cluster) {
			c.Spec.Plugins[0].Parameters = map[string]string{"barmanObjectName": clone.ParentStore, "serverName": "feature-1-20261126t090100z-0123"}
		},
		"another plugin claims the WAL": func(c *clone.Cluster) {
			t := true
			c.Spec.Plugins[0].IsWALArchiver = nil
			c.Spec.Plugins = append(c.Spec.Plugins, clone.PluginConfiguration{Name: "other.example.com", IsWALArchiver: &t})
		},
		"no archiver": func(c *clone.Cluster) { c.Spec.Plugins = nil },
		"external cluster through own store": func(c *clone.Cluster) {
			c.Spec.ExternalClusters[0].Plugin.Parameters["barmanObjectName"] = clone.ArchiveStore
		},
		"external cluster reads own serverName": func(c *clone.Cluster) {
			c.Spec.ExternalClusters[0].Plugin.Parameters["serverName"] = "feature-1-20261126t090100z-0123"
		},
	} {
		o, err := clone.Build(settings(), childSpec())
		if err != nil {
			t.Fatal(err)
		}
		c := o.Cluster
		b, _ := yaml.Marshal(&c)
		var cp clone.Cluster
		if err := yaml.Unmarshal(b, &cp); err != nil {
			t.Fatal(err)
		}
		mutate(&cp)
		if err := clone.CheckSafety(childSpec(), &cp); !errors.Is(err, clone.ErrUnsafe) {
			t.Errorf("%s: want ErrUnsafe, got %v", name, err)
		}
	}
	// A plugin that has nothing to do with object stores is allowed.
	o, _ := clone.Build(settings(), childSpec())
	o.Cluster.Spec.Plugins = append(o.Cluster.Spec.Plugins, clone.PluginConfiguration{Name: "metrics.example.com"})
	if err := clone.CheckSafety(childSpec(), &o.Cluster); err != nil {
		t.Fatal(err)
	}
	// A root reads no archive at all.
	r, _ := clone.Build(settings(), rootSpec())
	r.Cluster.Spec.ExternalClusters = o.Cluster.Spec.ExternalClusters
	if err := clone.CheckSafety(rootSpec(), &r.Cluster); !errors.Is(err, clone.ErrUnsafe) {
		t.Fatalf("root with an external archive: %v", err)
	}
}

// instanceSidecarConfiguration reaches both ObjectStores (and the guard's
// environment), passes the v0.15 CRD, and bad values are named.
func TestInstanceSidecarConfiguration(t *testing.T) {
	s := settings()
	s.ObjectStore.InstanceSidecarConfiguration = &clone.InstanceSidecarConfiguration{
		Env:       []clone.EnvVar{{Name: "AWS_REQUEST_CHECKSUM_CALCULATION", Value: "when_required"}},
		Resources: &clone.ResourceRequirements{Requests: map[string]string{"cpu": "50m", "memory": "64Mi"}, Limits: map[string]string{"memory": "512Mi"}},
	}
	if errs := s.Validate("database"); len(errs) != 0 {
		t.Fatal(errs)
	}
	o, err := clone.Build(s, childSpec())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []clone.ObjectStore{o.Archive, *o.ParentArchive} {
		sc := st.Spec.InstanceSidecarConfiguration
		if sc == nil || sc.Env[0].Value != "when_required" || sc.Resources.Limits["memory"] != "512Mi" {
			t.Fatalf("%s: %+v", st.Metadata.Name, sc)
		}
	}
	var inGuard bool
	for _, e := range o.Guard.Job.Spec.Template.Spec.Containers[0].Env {
		inGuard = inGuard || e.Name == "AWS_REQUEST_CHECKSUM_CALCULATION"
	}
	if !inGuard {
		t.Fatal("the guard's barman-cloud must get the sidecar's environment too")
	}
	if _, err := crdschema.CNPG(t).ValidateYAML(marshalAll(t, o)); err != nil {
		t.Fatal(err)
	}
	bad := settings()
	bad.ObjectStore.InstanceSidecarConfiguration = &clone.InstanceSidecarConfiguration{
		Env:       []clone.EnvVar{{Name: "1BAD"}, {Name: "GUARD_CLUSTER"}, {Name: "OK"}, {Name: "OK"}},
		Resources: &clone.ResourceRequirements{Requests: map[string]string{"cpu": "lots", "gpu": "1"}, Limits: map[string]string{"memory": "1 GB"}},
	}
	bad.CloneGuard.Timeout = "forever"
	var fields []string
	for _, e := range bad.Validate("database") {
		fields = append(fields, e.(*clone.FieldError).Field)
	}
	want := []string{
		"database.objectStore.instanceSidecarConfiguration.env[0].name",
		"database.objectStore.instanceSidecarConfiguration.env[1].name",
		"database.objectStore.instanceSidecarConfiguration.env[3].name",
		"database.objectStore.instanceSidecarConfiguration.resources.requests.cpu",
		"database.objectStore.instanceSidecarConfiguration.resources.requests.gpu",
		"database.objectStore.instanceSidecarConfiguration.resources.limits.memory",
		"database.cloneGuard.timeout",
	}
	if strings.Join(fields, "\n") != strings.Join(want, "\n") {
		t.Fatalf("fields:\n%s\nwant:\n%s", strings.Join(fields, "\n"), strings.Join(want, "\n"))
	}
}
