package crdschema

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"
)

// Built-in kinds (no CRD) are validated in three steps, as close to the
// apiserver as a test without one gets:
//
//  1. strict decoding into the k8s.io/api v0.31 type of the kind: an
//     unknown or misspelt field is an error (kubectl --validate=strict);
//  2. the Kubernetes OpenAPI schema that kustomize carries (kyaml's
//     built-in v1.21.2 schema, $refs inlined): types, formats, required
//     fields;
//  3. the apiserver's validation rules that matter for what offshoot
//     emits and that no schema expresses (names, Job restart policy and
//     deadlines, volume references).
var builtinTypes = map[string]func() any{
	"batch/v1/Job":                             func() any { return &batchv1.Job{} },
	"v1/ServiceAccount":                        func() any { return &corev1.ServiceAccount{} },
	"v1/Secret":                                func() any { return &corev1.Secret{} },
	"v1/Namespace":                             func() any { return &corev1.Namespace{} },
	"v1/Service":                               func() any { return &corev1.Service{} },
	"v1/ConfigMap":                             func() any { return &corev1.ConfigMap{} },
	"apps/v1/Deployment":                       func() any { return &appsv1.Deployment{} },
	"networking.k8s.io/v1/Ingress":             func() any { return &networkingv1.Ingress{} },
	"rbac.authorization.k8s.io/v1/Role":        func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any { return &rbacv1.RoleBinding{} },
}

// IsBuiltin reports whether ValidateBuiltin knows the kind.
func IsBuiltin(apiVersion, kind string) bool {
	_, ok := builtinTypes[apiVersion+"/"+kind]
	return ok
}

// ValidateBuiltin validates one object of a built-in kind (see above).
func ValidateBuiltin(obj map[string]any) error {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	newT, ok := builtinTypes[apiVersion+"/"+kind]
	if !ok {
		return fmt.Errorf("crdschema: %s %s is not a built-in kind this validator knows", apiVersion, kind)
	}
	name := objName(obj)
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	typed := newT()
	if err := yaml.UnmarshalStrict(raw, typed); err != nil {
		return fmt.Errorf("%s %s %q: %v", apiVersion, kind, name, err)
	}
	rs := openapi.SchemaForResourceType(kyaml.TypeMeta{APIVersion: apiVersion, Kind: kind})
	if rs == nil {
		return fmt.Errorf("crdschema: no OpenAPI schema for %s %s", apiVersion, kind)
	}
	schema, err := inlineRefs(rs.Schema, 0)
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	var problems []string
	res := validate.NewSchemaValidator(schema, nil, "", strfmt.Default).Validate(doc)
	for _, e := range res.Errors {
		problems = append(problems, e.Error())
	}
	problems = append(problems, apiserverRules(typed)...)
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%s %s %q is invalid:\n  - %s", apiVersion, kind, name, strings.Join(problems, "\n  - "))
	}
	return nil
}

func objName(obj map[string]any) string {
	meta, _ := obj["metadata"].(map[string]any)
	n, _ := meta["name"].(string)
	return n
}

// inlineRefs returns a copy of s with every $ref replaced by the definition
// it names (kube-openapi's validator does not follow references).
func inlineRefs(s *spec.Schema, depth int) (*spec.Schema, error) {
	if depth > 40 {
		return nil, fmt.Errorf("crdschema: OpenAPI references nest deeper than 40")
	}
	if s == nil {
		return nil, nil
	}
	if ref := s.Ref.String(); ref != "" {
		def, err := openapi.Resolve(&s.Ref, openapi.Schema())
		if err != nil {
			return nil, fmt.Errorf("crdschema: resolve %s: %w", ref, err)
		}
		return inlineRefs(def, depth+1)
	}
	out := *s
	out.Properties = nil
	if len(s.Properties) > 0 {
		out.Properties = map[string]spec.Schema{}
		for k, p := range s.Properties {
			p := p
			r, err := inlineRefs(&p, depth+1)
			if err != nil {
				return nil, err
			}
			out.Properties[k] = *r
		}
	}
	if s.Items != nil && s.Items.Schema != nil {
		r, err := inlineRefs(s.Items.Schema, depth+1)
		if err != nil {
			return nil, err
		}
		out.Items = &spec.SchemaOrArray{Schema: r}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		r, err := inlineRefs(s.AdditionalProperties.Schema, depth+1)
		if err != nil {
			return nil, err
		}
		out.AdditionalProperties = &spec.SchemaOrBool{Allows: true, Schema: r}
	}
	return &out, nil
}

// apiserverRules are the apiserver's checks (k8s.io/kubernetes
// pkg/apis/{core,batch,rbac}/validation) for the fields offshoot sets.
func apiserverRules(obj any) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	dnsSub := func(field, v string) {
		for _, m := range validation.IsDNS1123Subdomain(v) {
			add("%s: %q: %s", field, v, m)
		}
	}
	dnsLabel := func(field, v string) {
		for _, m := range validation.IsDNS1123Label(v) {
			add("%s: %q: %s", field, v, m)
		}
	}
	pod := func(prefix string, ps corev1.PodSpec) {
		vols := map[string]bool{}
		for i, v := range ps.Volumes {
			dnsLabel(fmt.Sprintf("%s.volumes[%d].name", prefix, i), v.Name)
			if vols[v.Name] {
				add("%s.volumes[%d].name: %q is duplicated", prefix, i, v.Name)
			}
			vols[v.Name] = true
		}
		if ps.ServiceAccountName != "" {
			dnsSub(prefix+".serviceAccountName", ps.ServiceAccountName)
		}
		if len(ps.Containers) == 0 {
			add("%s.containers: Required value", prefix)
		}
		names := map[string]bool{}
		for i, c := range ps.Containers {
			cp := fmt.Sprintf("%s.containers[%d]", prefix, i)
			dnsLabel(cp+".name", c.Name)
			if names[c.Name] {
				add("%s.name: %q is duplicated", cp, c.Name)
			}
			names[c.Name] = true
			if c.Image == "" {
				add("%s.image: Required value", cp)
			}
			for j, e := range c.Env {
				for _, m := range validation.IsEnvVarName(e.Name) {
					add("%s.env[%d].name: %q: %s", cp, j, e.Name, m)
				}
			}
			for j, m := range c.VolumeMounts {
				if !vols[m.Name] {
					add("%s.volumeMounts[%d].name: volume %q is not declared", cp, j, m.Name)
				}
				if !strings.HasPrefix(m.MountPath, "/") {
					add("%s.volumeMounts[%d].mountPath: must be absolute", cp, j)
				}
			}
		}
	}
	switch o := obj.(type) {
	case *batchv1.Job:
		// The Job controller labels its pods with the Job's name: a label
		// value, at most 63 characters.
		dnsLabel("metadata.name", o.Name)
		s := o.Spec
		if rp := s.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
			add("spec.template.spec.restartPolicy: %q: a Job's pods must use Never or OnFailure", rp)
		}
		if s.PodFailurePolicy != nil && s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
			add("spec.podFailurePolicy: needs restartPolicy Never")
		}
		if s.PodFailurePolicy != nil {
			for i, r := range s.PodFailurePolicy.Rules {
				if r.OnExitCodes != nil && r.OnExitCodes.ContainerName != nil && !containerNames(s.Template.Spec)[*r.OnExitCodes.ContainerName] {
					add("spec.podFailurePolicy.rules[%d].onExitCodes.containerName: no container %q", i, *r.OnExitCodes.ContainerName)
				}
				if r.OnExitCodes != nil {
					for _, v := range r.OnExitCodes.Values {
						if v == 0 && r.OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn {
							add("spec.podFailurePolicy.rules[%d].onExitCodes.values: 0 is not allowed with In", i)
						}
					}
				}
			}
		}
		if s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds <= 0 {
			add("spec.activeDeadlineSeconds: must be greater than 0")
		}
		if s.BackoffLimit != nil && *s.BackoffLimit < 0 {
			add("spec.backoffLimit: must be greater than or equal to 0")
		}
		pod("spec.template.spec", s.Template.Spec)
	case *corev1.ServiceAccount:
		dnsSub("metadata.name", o.Name)
	case *rbacv1.Role:
		dnsSub("metadata.name", o.Name)
		for i, r := range o.Rules {
			if len(r.Verbs) == 0 {
				add("rules[%d].verbs: Required value", i)
			}
		}
	case *rbacv1.RoleBinding:
		dnsSub("metadata.name", o.Name)
		if o.RoleRef.APIGroup != rbacv1.GroupName || (o.RoleRef.Kind != "Role" && o.RoleRef.Kind != "ClusterRole") {
			add("roleRef: %+v is not a Role or ClusterRole of %s", o.RoleRef, rbacv1.GroupName)
		}
		for i, s := range o.Subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.APIGroup != "" {
				add("subjects[%d].apiGroup: must be empty for a ServiceAccount", i)
			}
		}
	}
	return p
}

func containerNames(ps corev1.PodSpec) map[string]bool {
	m := map[string]bool{}
	for _, c := range ps.Containers {
		m[c.Name] = true
	}
	return m
}
