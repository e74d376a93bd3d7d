package clone

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Names and constants of what the database side emits.
const (
	PluginName = "barman-cloud.cloudnative-pg.io"
	// ArchiveStore is the ObjectStore an environment archives to (write side).
	ArchiveStore = "archive"
	// ParentStore is the ObjectStore through which a child reads its parent's archive.
	ParentStore = "parent-archive"
	// OriginCluster is the externalClusters entry naming the parent's archive.
	OriginCluster = "origin"

	SyncWaveAnnotation    = "argocd.argoproj.io/sync-wave"
	SyncOptionsAnnotation = "argocd.argoproj.io/sync-options"
	// Waves: the Namespace (-4), then credentials, the guard's RBAC and
	// the object stores, then the clone guard Job, which must complete
	// before the Cluster is applied; the Cluster before its backups and
	// before the app (wave 0).
	WaveNamespace = "-4"
	WaveStores    = "-3"
	WaveGuard     = "-2"
	WaveCluster   = "-1"
	WaveBackup    = "0"
)

// Spec is one environment's database: who it is, where it archives and
// (for a child) whose archive it recovers from.
type Spec struct {
	// Env is the environment name; Namespace its namespace.
	Env       string
	Namespace string
	// Cluster is the CNPG Cluster name (changes with every incarnation).
	Cluster string
	// ServerName is this incarnation's folder in the object store.
	ServerName string
	// Source is the parent's archive; nil for the root environment.
	Source *Source
	// Protected environments are never pruned or deleted by Argo CD.
	Protected bool
}

// Source is the archive a child environment recovers from.
type Source struct {
	Env        string     `json:"env"`
	Branch     string     `json:"branch"`
	ServerName string     `json:"serverName"`
	TargetTime *time.Time `json:"targetTime,omitempty"`
}

// Objects are the database objects of one environment.
type Objects struct {
	Credentials     any // *ExternalSecret, *Secret or nil
	Archive         ObjectStore
	ParentArchive   *ObjectStore
	Guard           Guard
	Cluster         Cluster
	ScheduledBackup ScheduledBackup
}

// List returns the objects in apply order.
func (o Objects) List() []any {
	var out []any
	if o.Credentials != nil {
		out = append(out, o.Credentials)
	}
	out = append(out, &o.Guard.Script, &o.Guard.ServiceAccount, &o.Guard.Role, &o.Guard.RoleBinding, &o.Archive)
	if o.ParentArchive != nil {
		out = append(out, o.ParentArchive)
	}
	out = append(out, &o.Guard.Job, &o.Cluster, &o.ScheduledBackup, &o.Guard.Adopt)
	if o.Guard.Retire != nil {
		out = append(out, o.Guard.Retire)
	}
	return out
}

// ErrUnsafe marks a violation of the clone safety rules.
var ErrUnsafe = errors.New("unsafe database clone")

// ServerName is the archive folder of one incarnation of an environment:
// unique per (environment, incarnation), so a re-created or refreshed
// environment never meets an old archive.
func ServerName(env, incarnation string) string { return env + "-" + incarnation }

// ClusterName is the CNPG Cluster name of the given generation: it changes on
// every refresh so that Argo CD replaces the Cluster, which CNPG needs to
// bootstrap again.
func ClusterName(env string, generation int) string { return fmt.Sprintf("%s-pg%d", env, generation) }

// CheckSafety enforces the rules that protect every other environment's data:
// an environment archives only into its own serverName, never into its
// parent's, and reads its parent only through a separate read-side store.
// With a Cluster (as built, or as kustomize built it) it also checks every
// plugin entry of it: see checkCluster.
func CheckSafety(s Spec, c *Cluster) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: environment %q: %s", ErrUnsafe, s.Env, fmt.Sprintf(format, args...))
	}
	if s.Env == "" || s.Namespace == "" || s.Cluster == "" {
		return fail("env, namespace and cluster must be set")
	}
	if !strings.HasPrefix(s.ServerName, s.Env+"-") || len(s.ServerName) <= len(s.Env)+1 {
		return fail("serverName %q is not one of this environment's own (%s-<incarnation>)", s.ServerName, s.Env)
	}
	if len(s.Cluster) > 50 {
		return fail("cluster name %q is longer than 50 characters", s.Cluster)
	}
	if src := s.Source; src != nil {
		if src.Env == s.Env {
			return fail("it cannot recover from itself")
		}
		if src.ServerName == "" {
			return fail("the parent's serverName is unknown")
		}
		if src.ServerName == s.ServerName {
			return fail("it would archive into its parent's serverName %q", src.ServerName)
		}
	}
	if c != nil {
		if err := checkCluster(s, c); err != nil {
			return fail("Cluster %s: %v", c.Metadata.Name, err)
		}
	}
	return nil
}

// checkCluster looks at every plugin entry of a Cluster, not only the one
// marked isWALArchiver: the Barman Cloud plugin archives WAL for the entry
// that is the WAL archiver and takes backups through the Cluster's entry,
// so exactly one entry may name the plugin or an ObjectStore, and it must
// write to this environment's own ArchiveStore and serverName. The parent's
// store appears only in externalClusters (the read side), under the
// parent's serverName.
func checkCluster(s Spec, c *Cluster) error {
	writers := 0
	for i, p := range c.Spec.Plugins {
		archiver := p.IsWALArchiver != nil && *p.IsWALArchiver
		_, names := p.Parameters["barmanObjectName"]
		_, server := p.Parameters["serverName"]
		if p.Name != PluginName && !archiver && !names && !server {
			continue // another plugin, not pointed at any object store
		}
		writers++
		if p.Name != PluginName {
			return fmt.Errorf("plugins[%d] %q is a WAL archiver or names an object store; only %s may", i, p.Name, PluginName)
		}
		if !archiver {
			return fmt.Errorf("plugins[%d] names the Barman Cloud plugin without isWALArchiver: true; it would receive archive calls too", i)
		}
		if got := p.Parameters["barmanObjectName"]; got != ArchiveStore {
			return fmt.Errorf("plugins[%d] writes through ObjectStore %q, not its own %q", i, got, ArchiveStore)
		}
		if got := p.Parameters["serverName"]; got != s.ServerName {
			return fmt.Errorf("plugins[%d] writes into serverName %q, not its own %q", i, got, s.ServerName)
		}
	}
	if writers != 1 {
		return fmt.Errorf("%d plugin entries write to an object store, want exactly 1", writers)
	}
	for i, ec := range c.Spec.ExternalClusters {
		if ec.Plugin == nil {
			continue
		}
		if s.Source == nil {
			return fmt.Errorf("externalClusters[%d]: a root environment reads no other archive", i)
		}
		if got := ec.Plugin.Parameters["barmanObjectName"]; got != ParentStore {
			return fmt.Errorf("externalClusters[%d] reads through ObjectStore %q, not the read-side %q", i, got, ParentStore)
		}
		if got := ec.Plugin.Parameters["serverName"]; got != s.Source.ServerName {
			return fmt.Errorf("externalClusters[%d] reads serverName %q, not the parent's %q", i, got, s.Source.ServerName)
		}
	}
	return nil
}

// Build renders the database objects of one environment.
func Build(set Settings, s Spec) (Objects, error) {
	if err := CheckSafety(s, nil); err != nil {
		return Objects{}, err
	}
	t := true
	stores := map[string]string{SyncWaveAnnotation: WaveStores}
	cluster := Cluster{
		TypeMeta: TypeMeta{APIVersion: "postgresql.cnpg.io/v1", Kind: "Cluster"},
		Metadata: ObjectMeta{Name: s.Cluster, Annotations: map[string]string{SyncWaveAnnotation: WaveCluster}},
		Spec: ClusterSpec{
			Instances: set.Instances,
			ImageName: set.ImageName,
			Storage:   StorageConfiguration{Size: set.StorageSize},
			Plugins: []PluginConfiguration{{
				Name:          PluginName,
				IsWALArchiver: &t,
				Parameters:    map[string]string{"barmanObjectName": ArchiveStore, "serverName": s.ServerName},
			}},
		},
	}
	if set.StorageClass != "" {
		sc := set.StorageClass
		cluster.Spec.Storage.StorageClass = &sc
	}
	if s.Protected {
		// Never pruned from git nor deleted with its Application: a
		// protected environment's data outlives any mistake upstream.
		cluster.Metadata.Annotations[SyncOptionsAnnotation] = "Prune=false,Delete=false"
	}
	o := Objects{Archive: objectStore(set, ArchiveStore, stores, set.Backup.Retention), Guard: buildGuard(set, s)}
	if src := s.Source; src != nil {
		ps := objectStore(set, ParentStore, stores, "") // read-only: no retention runs through it
		o.ParentArchive = &ps
		rec := &BootstrapRecovery{Source: OriginCluster, Database: set.Database, Owner: set.Owner}
		if src.TargetTime != nil {
			rec.RecoveryTarget = &RecoveryTarget{TargetTime: src.TargetTime.UTC().Format(time.RFC3339)}
		}
		cluster.Spec.Bootstrap.Recovery = rec
		cluster.Spec.ExternalClusters = []ExternalCluster{{
			Name: OriginCluster,
			Plugin: &PluginConfiguration{
				Name:       PluginName,
				Parameters: map[string]string{"barmanObjectName": ParentStore, "serverName": src.ServerName},
			},
		}}
	} else {
		cluster.Spec.Bootstrap.InitDB = &BootstrapInitDB{Database: set.Database, Owner: set.Owner}
	}
	o.Cluster = cluster
	o.ScheduledBackup = ScheduledBackup{
		TypeMeta: TypeMeta{APIVersion: "postgresql.cnpg.io/v1", Kind: "ScheduledBackup"},
		Metadata: ObjectMeta{Name: s.Cluster, Annotations: map[string]string{SyncWaveAnnotation: WaveBackup}},
		Spec: ScheduledBackupSpec{
			Schedule:             set.Backup.Schedule,
			Immediate:            &t, // a first base backup right away, so children can clone at once
			BackupOwnerReference: "self",
			Cluster:              LocalObjectReference{Name: s.Cluster},
			Method:               "plugin",
			PluginConfiguration:  &BackupPlugin{Name: PluginName},
		},
	}
	o.Credentials = credentials(set.ObjectStore.Credentials, s.Env)
	if err := checkObjects(s, o); err != nil {
		return Objects{}, err
	}
	return o, nil
}

func objectStore(set Settings, name string, annotations map[string]string, retention string) ObjectStore {
	c := set.ObjectStore.Credentials
	return ObjectStore{
		TypeMeta: TypeMeta{APIVersion: "barmancloud.cnpg.io/v1", Kind: "ObjectStore"},
		Metadata: ObjectMeta{Name: name, Annotations: copyMap(annotations)},
		Spec: ObjectStoreSpec{
			Configuration: BarmanObjectStoreConfiguration{
				DestinationPath: set.ObjectStore.DestinationPath,
				EndpointURL:     set.ObjectStore.EndpointURL,
				S3Credentials: &S3Credentials{
					AccessKeyID:     SecretKeySelector{Name: c.SecretName, Key: c.AccessKeyIDKey},
					SecretAccessKey: SecretKeySelector{Name: c.SecretName, Key: c.SecretAccessKeyKey},
				},
				Wal:  &CompressionConfig{Compression: "gzip"},
				Data: &CompressionConfig{Compression: "gzip"},
			},
			RetentionPolicy:              retention,
			InstanceSidecarConfiguration: sidecar(set.ObjectStore.InstanceSidecarConfiguration),
		},
	}
}

func sidecar(sc *InstanceSidecarConfiguration) *InstanceSidecarConfiguration {
	if sc == nil || (len(sc.Env) == 0 && sc.Resources == nil) {
		return nil
	}
	out := &InstanceSidecarConfiguration{Env: append([]EnvVar(nil), sc.Env...)}
	if r := sc.Resources; r != nil && (len(r.Requests) > 0 || len(r.Limits) > 0) {
		out.Resources = &ResourceRequirements{Requests: copyMapOrNil(r.Requests), Limits: copyMapOrNil(r.Limits)}
	}
	return out
}

func copyMapOrNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return copyMap(m)
}

// EnvPlaceholder in externalSecret.remoteKey and replicated.from is
// replaced by the environment's name: one object-store key per
// environment (docs/database.md, "Keys and prefixes").
const EnvPlaceholder = "{env}"

func credentials(c Credentials, env string) any {
	meta := ObjectMeta{Name: c.SecretName, Annotations: map[string]string{SyncWaveAnnotation: WaveStores}}
	switch c.Source {
	case SourceExternalSecret:
		es := c.ExternalSecret
		apiVersion, kind, refresh := es.APIVersion, es.StoreKind, es.RefreshInterval
		if apiVersion == "" {
			apiVersion = "external-secrets.io/v1"
		}
		if kind == "" {
			kind = "ClusterSecretStore"
		}
		if refresh == "" {
			refresh = "1h"
		}
		remoteKey := strings.ReplaceAll(es.RemoteKey, EnvPlaceholder, env)
		return &ExternalSecret{
			TypeMeta: TypeMeta{APIVersion: apiVersion, Kind: "ExternalSecret"},
			Metadata: meta,
			Spec: ExternalSecretSpec{
				RefreshInterval: refresh,
				SecretStoreRef:  SecretStoreRef{Name: es.StoreName, Kind: kind},
				Target:          ExternalSecretTarget{Name: c.SecretName, CreationPolicy: "Owner"},
				Data: []ExternalSecretDatum{
					{SecretKey: c.AccessKeyIDKey, RemoteRef: ExternalRemoteRef{Key: remoteKey, Property: c.AccessKeyIDKey}},
					{SecretKey: c.SecretAccessKeyKey, RemoteRef: ExternalRemoteRef{Key: remoteKey, Property: c.SecretAccessKeyKey}},
				},
			},
		}
	case SourceReplicated:
		ann := c.Replicated.Annotation
		if ann == "" {
			ann = "replicator.v1.mittwald.de/replicate-from"
		}
		meta.Annotations[ann] = strings.ReplaceAll(c.Replicated.From, EnvPlaceholder, env)
		return &Secret{TypeMeta: TypeMeta{APIVersion: "v1", Kind: "Secret"}, Metadata: meta, Type: "Opaque"}
	}
	return nil
}

// checkObjects re-checks the invariants on what was built, so that no later
// edit of Build can make a cluster archive anywhere but its own serverName.
func checkObjects(s Spec, o Objects) error {
	if err := CheckSafety(s, &o.Cluster); err != nil {
		return err
	}
	if o.ParentArchive != nil && o.ParentArchive.Spec.RetentionPolicy != "" {
		return fmt.Errorf("%w: the read-side store of %q must not run retention on the parent's archive", ErrUnsafe, s.Env)
	}
	if j := o.Guard.Job; !strings.HasPrefix(j.Metadata.Name, s.Cluster+GuardJobInfix) || j.Metadata.Annotations[SyncWaveAnnotation] != WaveGuard ||
		len(j.Metadata.Name) > 63 {
		return fmt.Errorf("%w: environment %q: the clone guard of %s must run in wave %s, before the Cluster (Job %q)", ErrUnsafe, s.Env, s.Cluster, WaveGuard, j.Metadata.Name)
	}
	return nil
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
