package clone

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"time"
)

// The clone guard: a Job in the wave between the object stores and the
// Cluster, named per generation, that lets Argo CD apply the Cluster only
// once CNPG can bootstrap it; a second Job in the Cluster's wave then makes
// both dependents of the Cluster, so that a Cluster deleted by hand takes
// them with it and Argo CD's self-heal runs the guard again before
// re-creating it. None of them is an Argo CD hook: a self-heal is a partial
// sync that runs no hooks (only the missing objects, in their waves), and a
// hook would run in the sync of every commit. See guard.py for what it
// checks and docs/database.md for the rule.

// Guard object names and settings.
const (
	// GuardName names the guard's ServiceAccount, Role and RoleBinding.
	GuardName = "offshoot-clone-guard"
	// GuardJobInfix makes the Job name of a generation:
	// <cluster>-guard-<5 hex of its spec> (a Job's pod template cannot
	// change, so a new offshoot's guard is a new Job).
	GuardJobInfix = "-guard-"
	// AdoptJobInfix names the Job that makes the guard (and itself) a
	// dependent of the Cluster: <cluster>-adopt-<5 hex>.
	AdoptJobInfix = "-adopt-"
	// RetireJobInfix names the Job of a protected environment that deletes
	// its previous generations' Clusters: <cluster>-retire-<5 hex>.
	RetireJobInfix = "-retire-"
	// GuardRefusedExitCode is the guard's exit code for "never": the Job
	// fails at once instead of retrying (podFailurePolicy FailJob).
	GuardRefusedExitCode = 3
	// DefaultGuardImage carries barman-cloud and python3: the plugin's
	// own sidecar image (distroless; PATH=/venv/bin:...).
	DefaultGuardImage = "ghcr.io/cloudnative-pg/plugin-barman-cloud-sidecar:v0.15.0"
	// DefaultGuardTimeout bounds the wait (activeDeadlineSeconds).
	DefaultGuardTimeout = 6 * time.Hour

	// HookAnnotation marks Argo CD hooks; none of the guard's Jobs is one.
	HookAnnotation      = "argocd.argoproj.io/hook"
	guardCredentialsDir = "/credentials"
	guardScriptDir      = "/guard"
	guardScriptFile     = "guard.py"
)

//go:embed guard.py
var guardScript string

// GuardScript is the Python program the guard Jobs run (from the
// ConfigMap offshoot-clone-guard, mounted at /guard).
func GuardScript() string { return guardScript }

// Job is a batch/v1 Job (the subset the guard uses).
type Job struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     JobSpec    `json:"spec"`
}

// JobSpec bounds the guard: one pod at a time, a deadline, and no retry
// of a refusal.
type JobSpec struct {
	BackoffLimit          *int32            `json:"backoffLimit,omitempty"`
	ActiveDeadlineSeconds *int64            `json:"activeDeadlineSeconds,omitempty"`
	PodFailurePolicy      *PodFailurePolicy `json:"podFailurePolicy,omitempty"`
	Template              PodTemplateSpec   `json:"template"`
}

// PodFailurePolicy maps pod failures to Job actions.
type PodFailurePolicy struct {
	Rules []PodFailurePolicyRule `json:"rules"`
}

// PodFailurePolicyRule is one rule: an action on given exit codes.
type PodFailurePolicyRule struct {
	Action      string                      `json:"action"`
	OnExitCodes *PodFailurePolicyOnExitCode `json:"onExitCodes,omitempty"`
}

// PodFailurePolicyOnExitCode matches container exit codes.
type PodFailurePolicyOnExitCode struct {
	ContainerName string  `json:"containerName,omitempty"`
	Operator      string  `json:"operator"`
	Values        []int32 `json:"values"`
}

// PodTemplateSpec is the guard's pod.
type PodTemplateSpec struct {
	Metadata TemplateMeta `json:"metadata,omitempty"`
	Spec     PodSpec      `json:"spec"`
}

// TemplateMeta are the pod template's labels.
type TemplateMeta struct {
	Labels map[string]string `json:"labels,omitempty"`
}

// PodSpec is the subset of core/v1 PodSpec the guard uses.
type PodSpec struct {
	ServiceAccountName string              `json:"serviceAccountName"`
	RestartPolicy      string              `json:"restartPolicy"`
	SecurityContext    *PodSecurityContext `json:"securityContext,omitempty"`
	Containers         []Container         `json:"containers"`
	Volumes            []Volume            `json:"volumes,omitempty"`
}

// PodSecurityContext runs the pod as a non-root user.
type PodSecurityContext struct {
	RunAsNonRoot   *bool           `json:"runAsNonRoot,omitempty"`
	RunAsUser      *int64          `json:"runAsUser,omitempty"`
	RunAsGroup     *int64          `json:"runAsGroup,omitempty"`
	SeccompProfile *SeccompProfile `json:"seccompProfile,omitempty"`
}

// SeccompProfile selects the seccomp profile.
type SeccompProfile struct {
	Type string `json:"type"`
}

// Container is the subset of core/v1 Container the guard uses.
type Container struct {
	Name                     string                `json:"name"`
	Image                    string                `json:"image"`
	Command                  []string              `json:"command"`
	Env                      []EnvVar              `json:"env,omitempty"`
	VolumeMounts             []VolumeMount         `json:"volumeMounts,omitempty"`
	Resources                *ResourceRequirements `json:"resources,omitempty"`
	SecurityContext          *SecurityContext      `json:"securityContext,omitempty"`
	TerminationMessagePolicy string                `json:"terminationMessagePolicy,omitempty"`
}

// SecurityContext hardens the guard's container.
type SecurityContext struct {
	AllowPrivilegeEscalation *bool         `json:"allowPrivilegeEscalation,omitempty"`
	ReadOnlyRootFilesystem   *bool         `json:"readOnlyRootFilesystem,omitempty"`
	Capabilities             *Capabilities `json:"capabilities,omitempty"`
}

// Capabilities to drop.
type Capabilities struct {
	Drop []string `json:"drop,omitempty"`
}

// VolumeMount mounts a volume into the container.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// Volume is a Secret, ConfigMap or emptyDir volume.
type Volume struct {
	Name      string                 `json:"name"`
	Secret    *SecretVolumeSource    `json:"secret,omitempty"`
	ConfigMap *ConfigMapVolumeSource `json:"configMap,omitempty"`
	EmptyDir  *EmptyDirVolumeSource  `json:"emptyDir,omitempty"`
}

// ConfigMapVolumeSource projects a ConfigMap.
type ConfigMapVolumeSource struct {
	Name string `json:"name"`
}

// SecretVolumeSource projects a Secret; Optional lets the pod start before
// the Secret exists (kubelet fills the volume when it appears).
type SecretVolumeSource struct {
	SecretName string `json:"secretName"`
	Optional   *bool  `json:"optional,omitempty"`
}

// EmptyDirVolumeSource is a scratch directory.
type EmptyDirVolumeSource struct{}

// ConfigMap is a core/v1 ConfigMap.
type ConfigMap struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta        `json:"metadata"`
	Data     map[string]string `json:"data"`
}

// ServiceAccount is a core/v1 ServiceAccount.
type ServiceAccount struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
}

// Role is an rbac.authorization.k8s.io/v1 Role.
type Role struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta   `json:"metadata"`
	Rules    []PolicyRule `json:"rules"`
}

// PolicyRule grants verbs on resources.
type PolicyRule struct {
	APIGroups     []string `json:"apiGroups"`
	Resources     []string `json:"resources"`
	ResourceNames []string `json:"resourceNames,omitempty"`
	Verbs         []string `json:"verbs"`
}

// RoleBinding is an rbac.authorization.k8s.io/v1 RoleBinding.
type RoleBinding struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Subjects []Subject  `json:"subjects"`
	RoleRef  RoleRef    `json:"roleRef"`
}

// Subject is whom a RoleBinding binds.
type Subject struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// RoleRef names the bound Role.
type RoleRef struct {
	APIGroup string `json:"apiGroup"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
}

// Guard is the guard's objects: the script, the guard Job, the Job that
// makes both dependents of the Cluster, the retire Job (protected envs),
// and the right to read that Cluster and patch those Jobs.
type Guard struct {
	// Script holds guard.py, once per environment, for all its Jobs.
	Script         ConfigMap
	ServiceAccount ServiceAccount
	Role           Role
	RoleBinding    RoleBinding
	Job            Job
	Adopt          Job
	// Retire is set for protected environments only (see guard.py).
	Retire *Job
}

func buildGuard(set Settings, s Spec) Guard {
	g := set.CloneGuard
	image := g.Image
	if image == "" {
		image = DefaultGuardImage
	}
	timeout := DefaultGuardTimeout
	if d, err := time.ParseDuration(g.Timeout); err == nil && g.Timeout != "" {
		timeout = d
	}
	rbac := map[string]string{SyncWaveAnnotation: WaveStores}
	c := set.ObjectStore.Credentials
	env := []EnvVar{
		{Name: "GUARD_NAMESPACE", ValueFrom: &EnvVarSource{FieldRef: &ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "GUARD_CLUSTER", Value: s.Cluster},
		{Name: "GUARD_SERVER_NAME", Value: s.ServerName},
		{Name: "GUARD_DESTINATION_PATH", Value: set.ObjectStore.DestinationPath},
	}
	if set.ObjectStore.EndpointURL != "" {
		env = append(env, EnvVar{Name: "GUARD_ENDPOINT_URL", Value: set.ObjectStore.EndpointURL})
	}
	env = append(env,
		EnvVar{Name: "GUARD_SECRET_NAME", Value: c.SecretName},
		EnvVar{Name: "GUARD_CREDENTIALS_DIR", Value: guardCredentialsDir},
		EnvVar{Name: "GUARD_ACCESS_KEY_ID_KEY", Value: c.AccessKeyIDKey},
		EnvVar{Name: "GUARD_SECRET_ACCESS_KEY_KEY", Value: c.SecretAccessKeyKey},
	)
	if src := s.Source; src != nil {
		env = append(env,
			EnvVar{Name: "GUARD_PARENT_SERVER_NAME", Value: src.ServerName},
			EnvVar{Name: "GUARD_PARENT_BRANCH", Value: src.Branch})
		if src.TargetTime != nil {
			env = append(env, EnvVar{Name: "GUARD_TARGET_TIME", Value: src.TargetTime.UTC().Format(time.RFC3339)})
		}
	}
	env = append(env, EnvVar{Name: "HOME", Value: "/tmp"})
	// The sidecar's own settings (e.g. AWS_REQUEST_CHECKSUM_CALCULATION)
	// apply to the guard's barman-cloud too.
	if sc := set.ObjectStore.InstanceSidecarConfiguration; sc != nil {
		env = append(env, sc.Env...)
	}
	job := guardJob(s.Cluster, image, c.SecretName, env, int64(timeout/time.Second))
	nameJob(&job, s.Cluster+GuardJobInfix, WaveGuard)
	// Every Job here is an ordinary resource, run once per generation (and
	// per change of its spec or script): hooks would run in every sync of
	// every commit, and never in a self-heal.
	adopt := guardJob(s.Cluster, image, c.SecretName, []EnvVar{
		{Name: "GUARD_NAMESPACE", ValueFrom: &EnvVarSource{FieldRef: &ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "GUARD_MODE", Value: "adopt"},
		{Name: "GUARD_CLUSTER", Value: s.Cluster},
		{Name: "GUARD_JOB", Value: job.Metadata.Name},
		{Name: "GUARD_SERVER_NAME", Value: s.ServerName},
		{Name: "GUARD_DESTINATION_PATH", Value: set.ObjectStore.DestinationPath},
		{Name: "GUARD_CREDENTIALS_DIR", Value: guardCredentialsDir},
		{Name: "GUARD_ACCESS_KEY_ID_KEY", Value: c.AccessKeyIDKey},
		{Name: "GUARD_SECRET_ACCESS_KEY_KEY", Value: c.SecretAccessKeyKey},
		{Name: "HOME", Value: "/tmp"},
	}, 600)
	// In the Cluster's wave: it adopts the guard as soon as the Cluster
	// object exists, whether or not the rest of the sync succeeds.
	nameJob(&adopt, s.Cluster+AdoptJobInfix, WaveCluster)
	rules := []PolicyRule{
		{APIGroups: []string{"postgresql.cnpg.io"}, Resources: []string{"clusters"}, ResourceNames: []string{s.Cluster}, Verbs: []string{"get"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, ResourceNames: []string{job.Metadata.Name, adopt.Metadata.Name}, Verbs: []string{"get", "patch"}},
	}
	var retire *Job
	if s.Protected {
		r := guardJob(s.Cluster, image, c.SecretName, []EnvVar{
			{Name: "GUARD_NAMESPACE", ValueFrom: &EnvVarSource{FieldRef: &ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "GUARD_MODE", Value: "retire"},
			{Name: "GUARD_ENV", Value: s.Env},
			{Name: "GUARD_CLUSTER", Value: s.Cluster},
			{Name: "GUARD_SERVER_NAME", Value: s.ServerName},
			{Name: "GUARD_DESTINATION_PATH", Value: set.ObjectStore.DestinationPath},
			{Name: "GUARD_CREDENTIALS_DIR", Value: guardCredentialsDir},
			{Name: "GUARD_ACCESS_KEY_ID_KEY", Value: c.AccessKeyIDKey},
			{Name: "GUARD_SECRET_ACCESS_KEY_KEY", Value: c.SecretAccessKeyKey},
			{Name: "HOME", Value: "/tmp"},
		}, 600)
		// After the new Cluster is Healthy (wave -1): the old one serves
		// until then.
		nameJob(&r, s.Cluster+RetireJobInfix, WaveBackup)
		retire = &r
		// Listing cannot be limited by name; the namespace holds only
		// this environment's Clusters, and the script deletes only
		// <env>-pg<N> with N below the current generation.
		rules = append(rules, PolicyRule{APIGroups: []string{"postgresql.cnpg.io"}, Resources: []string{"clusters"}, Verbs: []string{"list", "delete"}})
	}
	return Guard{
		Script: ConfigMap{
			TypeMeta: TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			Metadata: ObjectMeta{Name: GuardName, Annotations: copyMap(rbac)},
			Data:     map[string]string{guardScriptFile: guardScript},
		},
		Retire: retire,
		ServiceAccount: ServiceAccount{
			TypeMeta: TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			Metadata: ObjectMeta{Name: GuardName, Annotations: copyMap(rbac)},
		},
		Role: Role{
			TypeMeta: TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			Metadata: ObjectMeta{Name: GuardName, Annotations: copyMap(rbac)},
			Rules:    rules,
		},
		RoleBinding: RoleBinding{
			TypeMeta: TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			Metadata: ObjectMeta{Name: GuardName, Annotations: copyMap(rbac)},
			Subjects: []Subject{{Kind: "ServiceAccount", Name: GuardName, Namespace: s.Namespace}},
			RoleRef:  RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: GuardName},
		},
		Job:   job,
		Adopt: adopt,
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of strings and numbers
	}
	return b
}

// nameJob names a Job <prefix><5 hex of its spec and the script> (a Job's
// pod template cannot change: a new spec or script must be a new Job), puts
// it in a sync wave, and tells it its own name (GUARD_SELF, not hashed).
func nameJob(j *Job, prefix, wave string) {
	sum := sha256.Sum256(append(mustJSON(j.Spec), guardScript...))
	j.Metadata.Name = prefix + hex.EncodeToString(sum[:])[:5]
	j.Metadata.Annotations = map[string]string{SyncWaveAnnotation: wave}
	c := &j.Spec.Template.Spec.Containers[0]
	c.Env = append(c.Env, EnvVar{Name: "GUARD_SELF", Value: j.Metadata.Name})
}

// guardJob is the Job running guard.py with env (nameJob names it).
func guardJob(cluster, image, secretName string, env []EnvVar, deadline int64) Job {
	f, t := false, true
	uid := int64(26) // the postgres user of the CNPG and plugin images
	backoff := int32(3)
	return Job{
		TypeMeta: TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		Spec: JobSpec{
			BackoffLimit:          &backoff,
			ActiveDeadlineSeconds: &deadline,
			PodFailurePolicy: &PodFailurePolicy{Rules: []PodFailurePolicyRule{{
				Action:      "FailJob",
				OnExitCodes: &PodFailurePolicyOnExitCode{ContainerName: "guard", Operator: "In", Values: []int32{GuardRefusedExitCode}},
			}}},
			Template: PodTemplateSpec{
				Metadata: TemplateMeta{Labels: map[string]string{"offshoot.dev/clone-guard": cluster}},
				Spec: PodSpec{
					ServiceAccountName: GuardName,
					RestartPolicy:      "Never",
					SecurityContext: &PodSecurityContext{
						RunAsNonRoot: &t, RunAsUser: &uid, RunAsGroup: &uid,
						SeccompProfile: &SeccompProfile{Type: "RuntimeDefault"},
					},
					Containers: []Container{{
						Name:    "guard",
						Image:   image,
						Command: []string{"python3", guardScriptDir + "/" + guardScriptFile},
						Env:     env,
						VolumeMounts: []VolumeMount{
							{Name: "credentials", MountPath: guardCredentialsDir, ReadOnly: true},
							{Name: "tmp", MountPath: "/tmp"},
							{Name: "script", MountPath: guardScriptDir, ReadOnly: true},
						},
						Resources: &ResourceRequirements{
							Requests: map[string]string{"cpu": "10m", "memory": "64Mi"},
							Limits:   map[string]string{"memory": "256Mi"},
						},
						SecurityContext: &SecurityContext{
							AllowPrivilegeEscalation: &f, ReadOnlyRootFilesystem: &t,
							Capabilities: &Capabilities{Drop: []string{"ALL"}},
						},
						TerminationMessagePolicy: "FallbackToLogsOnError",
					}},
					Volumes: []Volume{
						{Name: "credentials", Secret: &SecretVolumeSource{SecretName: secretName, Optional: &t}},
						{Name: "tmp", EmptyDir: &EmptyDirVolumeSource{}},
						{Name: "script", ConfigMap: &ConfigMapVolumeSource{Name: GuardName}},
					},
				},
			},
		},
	}
}
