package generator

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/offshoot-dev/offshoot/clone"
)

// kubernetes-replicator's annotations on the *source* Secret: without
// both, it copies nothing and every environment's Secret stays empty.
const (
	ReplicationAllowedAnnotation           = "replicator.v1.mittwald.de/replication-allowed"
	ReplicationAllowedNamespacesAnnotation = "replicator.v1.mittwald.de/replication-allowed-namespaces"
	defaultReplicateFromAnnotation         = "replicator.v1.mittwald.de/replicate-from"
)

// ReplicationNamespacesPattern is the value of the source Secret's
// replication-allowed-namespaces annotation: exactly the namespaces of
// this config's environments (kubernetes-replicator matches each
// comma-separated entry as a regular expression against the whole name).
func (c *Config) ReplicationNamespacesPattern() string {
	return "^" + regexp.QuoteMeta(c.App.NamespacePrefix) + "[a-z0-9-]+$"
}

// ReplicatedSourceInstructions says how to create the source Secret that
// kubernetes-replicator copies into every environment when the
// credentials source is "replicated" with its default annotation (empty
// otherwise): the commands `offshoot init` should print. With {env} in
// replicated.from there is one source Secret per environment.
func (c *Config) ReplicatedSourceInstructions() string {
	cr := c.Database.ObjectStore.Credentials
	if cr.Source != clone.SourceReplicated || cr.Replicated == nil {
		return ""
	}
	if a := cr.Replicated.Annotation; a != "" && a != defaultReplicateFromAnnotation {
		return fmt.Sprintf("The credentials Secret of each environment is filled by the replicator that watches %s; "+
			"allow it to copy %s into the namespaces %s.\n", a, cr.Replicated.From, c.ReplicationNamespacesPattern())
	}
	ns, name, _ := strings.Cut(cr.Replicated.From, "/")
	allowed := c.ReplicationNamespacesPattern()
	perEnv := strings.Contains(cr.Replicated.From, clone.EnvPlaceholder)
	if perEnv {
		// One source per environment: only that environment's namespace.
		allowed = "^" + regexp.QuoteMeta(c.App.NamespacePrefix) + clone.EnvPlaceholder + "$"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Create the object-store credentials that kubernetes-replicator copies into each environment's Secret %s", cr.SecretName)
	if perEnv {
		b.WriteString(" (one source Secret, with its own key, per environment: replace {env} by the environment's name)")
	}
	fmt.Fprintf(&b, ":\n\n  kubectl create namespace %s --dry-run=client -o yaml | kubectl apply -f -\n", ns)
	fmt.Fprintf(&b, "  kubectl -n %s create secret generic %s --from-literal=%s=... --from-literal=%s=...\n", ns, name, cr.AccessKeyIDKey, cr.SecretAccessKeyKey)
	fmt.Fprintf(&b, "  kubectl -n %s annotate secret %s %s=true '%s=%s'\n", ns, name, ReplicationAllowedAnnotation, ReplicationAllowedNamespacesAnnotation, allowed)
	b.WriteString("\nWithout both annotations on the source the replicator copies nothing; the clone guard Job then waits for the keys (docs/database.md).\n")
	return b.String()
}
