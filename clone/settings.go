// Package clone builds the database side of an environment: a CloudNativePG
// Cluster that is either initialised fresh (the root environment) or
// recovered from its parent environment's Barman Cloud archive, the plugin
// ObjectStores it reads from and archives to, and its ScheduledBackup.
//
// The CNPG and plugin-barman-cloud API modules cannot be built beside
// argo-cd v2 at the versions that have the fields we need, so this package
// declares small typed structs of its own for exactly what it emits; tests
// validate them against the CRD schemas of cloudnative-pg v1.30.0 and
// plugin-barman-cloud v0.15.0.
package clone

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Settings are the database settings of offshoot.yaml (the `database` key).
type Settings struct {
	// Instances is the number of PostgreSQL instances per environment.
	Instances int `json:"instances"`
	// StorageSize is the PVC size of each instance, e.g. "1Gi".
	StorageSize string `json:"storageSize"`
	// StorageClass is optional; empty means the cluster default.
	StorageClass string `json:"storageClass,omitempty"`
	// ImageName is the PostgreSQL operand image.
	ImageName string `json:"imageName"`
	// Database and Owner name the application database created by initdb.
	Database string `json:"database"`
	Owner    string `json:"owner"`
	// ObjectStore is where every environment archives WAL and base backups.
	ObjectStore ObjectStoreSettings `json:"objectStore"`
	// Backup is the schedule and retention of base backups.
	Backup BackupSettings `json:"backup"`
	// CloneGuard configures the Job that holds a Cluster back until CNPG
	// can bootstrap it (docs/database.md).
	CloneGuard GuardSettings `json:"cloneGuard,omitempty"`
}

// GuardSettings configure the clone guard Job.
type GuardSettings struct {
	// Image runs python3 and barman-cloud-backup-list (default: the
	// Barman Cloud plugin's sidecar image).
	Image string `json:"image,omitempty"`
	// Timeout bounds the wait, a Go duration (default 6h): the Job's
	// activeDeadlineSeconds.
	Timeout string `json:"timeout,omitempty"`
}

// ObjectStoreSettings describe the shared bucket; each environment writes
// under its own serverName below DestinationPath.
type ObjectStoreSettings struct {
	DestinationPath string      `json:"destinationPath"`
	EndpointURL     string      `json:"endpointURL,omitempty"`
	Credentials     Credentials `json:"credentials"`
	// InstanceSidecarConfiguration is copied to both ObjectStores: the
	// plugin's sidecar in each instance pod (and the clone guard) gets
	// these environment variables and resources.
	InstanceSidecarConfiguration *InstanceSidecarConfiguration `json:"instanceSidecarConfiguration,omitempty"`
}

// Credentials say how the object store credentials Secret gets into each
// environment's namespace. The credentials themselves never go into git.
type Credentials struct {
	// SecretName is the Secret the ObjectStores reference in each env namespace.
	SecretName         string `json:"secretName"`
	AccessKeyIDKey     string `json:"accessKeyIDKey"`
	SecretAccessKeyKey string `json:"secretAccessKeyKey"`
	// Source is one of "externalSecret", "replicated" or "existing".
	Source         string                `json:"source"`
	ExternalSecret *ExternalSecretSource `json:"externalSecret,omitempty"`
	Replicated     *ReplicatedSource     `json:"replicated,omitempty"`
}

// Credential sources.
const (
	SourceExternalSecret = "externalSecret"
	SourceReplicated     = "replicated"
	SourceExisting       = "existing"
)

// ExternalSecretSource makes an External Secrets Operator ExternalSecret in
// each env namespace that reads the credentials from a cluster store.
type ExternalSecretSource struct {
	APIVersion string `json:"apiVersion,omitempty"`
	StoreKind  string `json:"storeKind,omitempty"`
	StoreName  string `json:"storeName"`
	// RemoteKey is the key in the store; {env} is replaced by the
	// environment's name (a key per environment).
	RemoteKey       string `json:"remoteKey"`
	RefreshInterval string `json:"refreshInterval,omitempty"`
}

// ReplicatedSource makes an empty Secret annotated for a replicator
// (kubernetes-replicator's replicate-from by default) that copies the data
// from a source Secret outside git.
type ReplicatedSource struct {
	// From is "namespace/name" of the source Secret; {env} is replaced by
	// the environment's name (a source Secret, and key, per environment).
	From string `json:"from"`
	// Annotation is the annotation key the replicator watches.
	Annotation string `json:"annotation,omitempty"`
}

// BackupSettings schedule base backups and keep them for Retention.
type BackupSettings struct {
	// Schedule is a six-field cron expression (seconds first), as CNPG wants.
	Schedule string `json:"schedule"`
	// Retention is the ObjectStore retentionPolicy, e.g. "7d".
	Retention string `json:"retention"`
}

// DefaultSettings are the values offshoot.yaml may leave out.
func DefaultSettings() Settings {
	return Settings{
		Instances:   1,
		StorageSize: "1Gi",
		ImageName:   "ghcr.io/cloudnative-pg/postgresql:17.6",
		Database:    "app",
		Owner:       "app",
		Backup:      BackupSettings{Schedule: "0 0 2 * * *", Retention: "7d"},
		ObjectStore: ObjectStoreSettings{Credentials: Credentials{
			SecretName:         "offshoot-backup-credentials",
			AccessKeyIDKey:     "ACCESS_KEY_ID",
			SecretAccessKeyKey: "ACCESS_SECRET_KEY",
			Source:             SourceExisting,
		}},
	}
}

// FieldError names the offending field of offshoot.yaml and says what is wrong.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

var (
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	quantity         = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$`)
	cpuQuantity      = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?m?$`)
	envName          = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	retention        = regexp.MustCompile(`^[1-9][0-9]*[dwm]$`)
	secretKey        = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	pgIdentifier     = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	objectURL        = regexp.MustCompile(`^(s3|gs|https?)://[^\s]+$`)
	azureURL         = regexp.MustCompile(`^https://[^\s]+\.blob\.core\.windows\.net/[^\s]+$`)
)

// Validate checks the settings; prefix is the field path in offshoot.yaml.
func (s Settings) Validate(prefix string) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: prefix + "." + field, Reason: fmt.Sprintf(format, args...)})
	}
	if s.Instances < 1 || s.Instances > 10 {
		add("instances", "must be between 1 and 10, got %d", s.Instances)
	}
	if !quantity.MatchString(s.StorageSize) {
		add("storageSize", "must be a Kubernetes quantity such as 1Gi, got %q", s.StorageSize)
	}
	if s.StorageClass != "" && (!dns1123Subdomain.MatchString(s.StorageClass) || len(s.StorageClass) > 253) {
		add("storageClass", "must be a storage class name, got %q", s.StorageClass)
	}
	if s.ImageName == "" || strings.ContainsAny(s.ImageName, " \t\n") {
		add("imageName", "must be a container image reference, got %q", s.ImageName)
	}
	if !pgIdentifier.MatchString(s.Database) {
		add("database", "must be a lower-case PostgreSQL identifier, got %q", s.Database)
	}
	if !pgIdentifier.MatchString(s.Owner) {
		add("owner", "must be a lower-case PostgreSQL identifier, got %q", s.Owner)
	}
	os := s.ObjectStore
	if os.DestinationPath == "" {
		add("objectStore.destinationPath", "is required (for example s3://my-bucket/offshoot)")
	} else if !objectURL.MatchString(os.DestinationPath) && !azureURL.MatchString(os.DestinationPath) {
		add("objectStore.destinationPath", "must be an s3://, gs:// or https:// URL, got %q", os.DestinationPath)
	}
	if os.EndpointURL != "" && !strings.HasPrefix(os.EndpointURL, "http://") && !strings.HasPrefix(os.EndpointURL, "https://") {
		add("objectStore.endpointURL", "must be an http:// or https:// URL, got %q", os.EndpointURL)
	}
	c := os.Credentials
	cp := "objectStore.credentials."
	if !dns1123Label.MatchString(c.SecretName) {
		add(cp+"secretName", "must be a DNS-1123 name, got %q", c.SecretName)
	}
	if !secretKey.MatchString(c.AccessKeyIDKey) {
		add(cp+"accessKeyIDKey", "must be a Secret data key, got %q", c.AccessKeyIDKey)
	}
	if !secretKey.MatchString(c.SecretAccessKeyKey) {
		add(cp+"secretAccessKeyKey", "must be a Secret data key, got %q", c.SecretAccessKeyKey)
	}
	switch c.Source {
	case SourceExternalSecret:
		if c.ExternalSecret == nil {
			add(cp+"externalSecret", "is required when source is %q", c.Source)
		} else {
			es := c.ExternalSecret
			if es.StoreName == "" {
				add(cp+"externalSecret.storeName", "is required")
			}
			if es.RemoteKey == "" {
				add(cp+"externalSecret.remoteKey", "is required")
			}
			if es.StoreKind != "" && es.StoreKind != "ClusterSecretStore" && es.StoreKind != "SecretStore" {
				add(cp+"externalSecret.storeKind", "must be ClusterSecretStore or SecretStore, got %q", es.StoreKind)
			}
			if es.APIVersion != "" && es.APIVersion != "external-secrets.io/v1" && es.APIVersion != "external-secrets.io/v1beta1" {
				add(cp+"externalSecret.apiVersion", "must be external-secrets.io/v1 or external-secrets.io/v1beta1, got %q", es.APIVersion)
			}
		}
		if c.Replicated != nil {
			add(cp+"replicated", "is only allowed when source is %q", SourceReplicated)
		}
	case SourceReplicated:
		if c.Replicated == nil {
			add(cp+"replicated", "is required when source is %q", c.Source)
		} else {
			ns, name, ok := strings.Cut(strings.ReplaceAll(c.Replicated.From, EnvPlaceholder, "e"), "/")
			if !ok || !dns1123Label.MatchString(ns) || !dns1123Label.MatchString(name) {
				add(cp+"replicated.from", "must be namespace/name of the source Secret, got %q", c.Replicated.From)
			}
		}
		if c.ExternalSecret != nil {
			add(cp+"externalSecret", "is only allowed when source is %q", SourceExternalSecret)
		}
	case SourceExisting:
		if c.ExternalSecret != nil || c.Replicated != nil {
			add(cp+"source", "is %q, so externalSecret and replicated must not be set", c.Source)
		}
	default:
		add(cp+"source", "must be one of externalSecret, replicated, existing; got %q", c.Source)
	}
	if fields := strings.Fields(s.Backup.Schedule); len(fields) != 6 {
		add("backup.schedule", "must be a six-field cron expression with seconds first (e.g. \"0 0 2 * * *\"), got %q", s.Backup.Schedule)
	}
	if !retention.MatchString(s.Backup.Retention) {
		add("backup.retention", "must be a number followed by d, w or m (e.g. 7d), got %q", s.Backup.Retention)
	}
	if sc := os.InstanceSidecarConfiguration; sc != nil {
		validateSidecar(sc, "objectStore.instanceSidecarConfiguration.", add)
	}
	if img := s.CloneGuard.Image; img != "" && strings.ContainsAny(img, " \t\n") {
		add("cloneGuard.image", "must be a container image reference, got %q", img)
	}
	if t := s.CloneGuard.Timeout; t != "" {
		if d, err := time.ParseDuration(t); err != nil || d < time.Minute || d > 7*24*time.Hour {
			add("cloneGuard.timeout", "must be a duration between 1m and 168h (e.g. 6h), got %q", t)
		}
	}
	return errs
}

func validateSidecar(sc *InstanceSidecarConfiguration, prefix string, add func(field, format string, args ...any)) {
	seen := map[string]bool{}
	for i, e := range sc.Env {
		f := fmt.Sprintf("%senv[%d]", prefix, i)
		switch {
		case !envName.MatchString(e.Name):
			add(f+".name", "must be an environment variable name (letters, digits, _; not starting with a digit), got %q", e.Name)
		case seen[e.Name]:
			add(f+".name", "%q is set twice", e.Name)
		case strings.HasPrefix(e.Name, "GUARD_") || e.Name == "HOME":
			add(f+".name", "%q is reserved for the clone guard", e.Name)
		}
		seen[e.Name] = true
		if e.ValueFrom != nil {
			add(f+".valueFrom", "is not supported: give a literal value (secrets belong in the credentials Secret)")
		}
	}
	if r := sc.Resources; r != nil {
		for _, pm := range []struct {
			part string
			m    map[string]string
		}{{"requests", r.Requests}, {"limits", r.Limits}} {
			part, m := pm.part, pm.m
			names := make([]string, 0, len(m))
			for k := range m {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				v := m[k]
				f := prefix + "resources." + part + "." + k
				switch k {
				case "cpu":
					if !cpuQuantity.MatchString(v) && !quantity.MatchString(v) {
						add(f, "must be a CPU quantity such as 100m or 1, got %q", v)
					}
				case "memory", "ephemeral-storage":
					if !quantity.MatchString(v) {
						add(f, "must be a Kubernetes quantity such as 256Mi, got %q", v)
					}
				default:
					add(f, "unknown resource: use cpu, memory or ephemeral-storage")
				}
			}
		}
	}
}
