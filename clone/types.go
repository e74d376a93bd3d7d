package clone

// The typed subset of the CNPG (postgresql.cnpg.io/v1), Barman Cloud plugin
// (barmancloud.cnpg.io/v1) and External Secrets APIs that offshoot emits.
// Field names and JSON tags follow the upstream CRDs; tests validate the
// marshalled objects against those CRD schemas with unknown fields rejected.

// TypeMeta is apiVersion and kind.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the part of metadata offshoot sets.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Cluster is a CNPG Cluster.
type Cluster struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Spec     ClusterSpec `json:"spec"`
}

// ClusterSpec is the subset of the CNPG ClusterSpec offshoot uses.
type ClusterSpec struct {
	Instances        int                   `json:"instances"`
	ImageName        string                `json:"imageName"`
	Storage          StorageConfiguration  `json:"storage"`
	Bootstrap        Bootstrap             `json:"bootstrap"`
	ExternalClusters []ExternalCluster     `json:"externalClusters,omitempty"`
	Plugins          []PluginConfiguration `json:"plugins,omitempty"`
}

// StorageConfiguration is the PVC template of each instance.
type StorageConfiguration struct {
	Size         string  `json:"size"`
	StorageClass *string `json:"storageClass,omitempty"`
}

// Bootstrap says how a new cluster gets its data: exactly one of the two.
type Bootstrap struct {
	InitDB   *BootstrapInitDB   `json:"initdb,omitempty"`
	Recovery *BootstrapRecovery `json:"recovery,omitempty"`
}

// BootstrapInitDB creates an empty database.
type BootstrapInitDB struct {
	Database string `json:"database"`
	Owner    string `json:"owner"`
}

// BootstrapRecovery restores from an external cluster's archive.
type BootstrapRecovery struct {
	Source         string          `json:"source"`
	Database       string          `json:"database,omitempty"`
	Owner          string          `json:"owner,omitempty"`
	RecoveryTarget *RecoveryTarget `json:"recoveryTarget,omitempty"`
}

// RecoveryTarget is a point-in-time recovery target.
type RecoveryTarget struct {
	TargetTime string `json:"targetTime,omitempty"`
}

// ExternalCluster names another cluster's archive, read through a plugin.
type ExternalCluster struct {
	Name   string               `json:"name"`
	Plugin *PluginConfiguration `json:"plugin,omitempty"`
}

// PluginConfiguration enables a CNPG-I plugin; for Barman Cloud the
// parameters are barmanObjectName (an ObjectStore in the same namespace)
// and serverName (the folder in the object store).
type PluginConfiguration struct {
	Name          string            `json:"name"`
	IsWALArchiver *bool             `json:"isWALArchiver,omitempty"`
	Parameters    map[string]string `json:"parameters,omitempty"`
}

// ObjectStore is a Barman Cloud plugin ObjectStore.
type ObjectStore struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta      `json:"metadata"`
	Spec     ObjectStoreSpec `json:"spec"`
}

// ObjectStoreSpec configures the bucket and the retention of what is archived through it.
type ObjectStoreSpec struct {
	Configuration                BarmanObjectStoreConfiguration `json:"configuration"`
	RetentionPolicy              string                         `json:"retentionPolicy,omitempty"`
	InstanceSidecarConfiguration *InstanceSidecarConfiguration  `json:"instanceSidecarConfiguration,omitempty"`
}

// BarmanObjectStoreConfiguration is barman-cloud's object store configuration.
type BarmanObjectStoreConfiguration struct {
	DestinationPath string             `json:"destinationPath"`
	EndpointURL     string             `json:"endpointURL,omitempty"`
	S3Credentials   *S3Credentials     `json:"s3Credentials,omitempty"`
	Wal             *CompressionConfig `json:"wal,omitempty"`
	Data            *CompressionConfig `json:"data,omitempty"`
}

// S3Credentials reference the credentials Secret.
type S3Credentials struct {
	AccessKeyID     SecretKeySelector `json:"accessKeyId"`
	SecretAccessKey SecretKeySelector `json:"secretAccessKey"`
}

// SecretKeySelector selects a key of a Secret in the same namespace.
type SecretKeySelector struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// CompressionConfig sets the compression of WAL files or base backups.
type CompressionConfig struct {
	Compression string `json:"compression,omitempty"`
}

// ScheduledBackup is a CNPG ScheduledBackup.
type ScheduledBackup struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta          `json:"metadata"`
	Spec     ScheduledBackupSpec `json:"spec"`
}

// ScheduledBackupSpec takes base backups through the plugin.
type ScheduledBackupSpec struct {
	Schedule             string               `json:"schedule"`
	Immediate            *bool                `json:"immediate,omitempty"`
	BackupOwnerReference string               `json:"backupOwnerReference,omitempty"`
	Cluster              LocalObjectReference `json:"cluster"`
	Method               string               `json:"method"`
	PluginConfiguration  *BackupPlugin        `json:"pluginConfiguration,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	Name string `json:"name"`
}

// BackupPlugin names the plugin that takes the backup.
type BackupPlugin struct {
	Name string `json:"name"`
}

// ExternalSecret is an External Secrets Operator ExternalSecret.
type ExternalSecret struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta         `json:"metadata"`
	Spec     ExternalSecretSpec `json:"spec"`
}

// ExternalSecretSpec copies keys of a remote secret into a Secret.
type ExternalSecretSpec struct {
	RefreshInterval string                `json:"refreshInterval,omitempty"`
	SecretStoreRef  SecretStoreRef        `json:"secretStoreRef"`
	Target          ExternalSecretTarget  `json:"target"`
	Data            []ExternalSecretDatum `json:"data"`
}

// SecretStoreRef names the (Cluster)SecretStore.
type SecretStoreRef struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// ExternalSecretTarget is the Secret the operator writes.
type ExternalSecretTarget struct {
	Name           string `json:"name"`
	CreationPolicy string `json:"creationPolicy,omitempty"`
}

// ExternalSecretDatum maps one remote property to a Secret key.
type ExternalSecretDatum struct {
	SecretKey string            `json:"secretKey"`
	RemoteRef ExternalRemoteRef `json:"remoteRef"`
}

// ExternalRemoteRef is a key (and property) in the remote store.
type ExternalRemoteRef struct {
	Key      string `json:"key"`
	Property string `json:"property,omitempty"`
}

// Secret is a core v1 Secret without data: a placeholder a replicator fills.
type Secret struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Type     string     `json:"type,omitempty"`
}

// InstanceSidecarConfiguration configures the plugin's sidecar in every
// instance pod of a Cluster archiving through the ObjectStore
// (plugin-barman-cloud v0.15.0 ObjectStoreSpec.instanceSidecarConfiguration).
type InstanceSidecarConfiguration struct {
	Env       []EnvVar              `json:"env,omitempty"`
	Resources *ResourceRequirements `json:"resources,omitempty"`
}

// EnvVar is a literal environment variable (core/v1 EnvVar with value only).
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource takes an environment variable from elsewhere.
type EnvVarSource struct {
	FieldRef *ObjectFieldSelector `json:"fieldRef,omitempty"`
}

// ObjectFieldSelector selects a field of the pod (downward API).
type ObjectFieldSelector struct {
	FieldPath string `json:"fieldPath"`
}

// ResourceRequirements are container requests and limits.
type ResourceRequirements struct {
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}
