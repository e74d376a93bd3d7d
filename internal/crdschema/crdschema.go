// Package crdschema validates Kubernetes objects against real
// CustomResourceDefinition schemas the way kube-apiserver does when a custom
// resource is created with strict field validation (`kubectl apply
// --validate=strict`, fieldValidation=Strict).
//
// It is a test-support library: it is only meant to be imported from _test.go
// files, so it freely depends on k8s.io/apiextensions-apiserver.
//
// For every object it reproduces the create path of the apiserver's custom
// resource handler (pkg/apiserver/customresource_handler.go and
// pkg/registry/customresource/{strategy,validator}.go of
// k8s.io/apiextensions-apiserver):
//
//  1. decoding: ObjectMeta is decoded strictly (unknown metadata fields are
//     reported), unknown fields are pruned with the structural schema and every
//     pruned path is reported as an error (x-kubernetes-preserve-unknown-fields
//     and x-kubernetes-embedded-resource are honoured), non-nullable nulls are
//     dropped and embedded ObjectMeta is coerced;
//  2. defaulting with the schema defaults;
//  3. PrepareForCreate: status is dropped when the status subresource is on,
//     a namespace-less object of a namespaced kind gets a placeholder
//     namespace (the apiserver takes it from the request URL), generateName
//     is expanded;
//  4. validation: ObjectMeta (name must be a DNS-1123 subdomain, namespace a
//     DNS-1123 label, labels, annotations, ...), the OpenAPI v3 schema (types,
//     formats, enums, patterns, bounds, required), the scale subresource paths,
//     embedded resources, x-kubernetes-list-type map/set invariants and the
//     CEL x-kubernetes-validations rules, with the apiserver's per-call and
//     per-object cost budgets. As in the apiserver, CEL rules are skipped (and
//     that is reported) when the object has a type/required/enum error.
//
// Transition rules (those referring to oldSelf) do not apply on create and are
// not evaluated.
package crdschema

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metavalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/storage/names"
	"sigs.k8s.io/yaml"
)

// PlaceholderNamespace is the namespace assumed, for validation only, for an
// object of a namespaced kind that does not set metadata.namespace (the
// apiserver would take it from the request, kubectl from the context).
const PlaceholderNamespace = "default"

// Validator validates objects against a set of loaded CRDs. It is safe for
// concurrent use.
type Validator struct {
	groups   map[string][]string                      // group -> CRD sources, for "is this group loaded"
	kinds    map[schema.GroupKind]*crdInfo            // group+kind -> CRD
	versions map[schema.GroupVersionKind]*versionInfo // served and unserved versions
}

type crdInfo struct {
	name                  string // metadata.name of the CRD
	source                string // file it was loaded from
	namespaced            bool
	preserveUnknownFields bool
	versions              []string // all versions, in CRD order
}

type versionInfo struct {
	crd    *crdInfo
	gvk    schema.GroupVersionKind
	served bool

	structural      *structuralschema.Structural // nil if the version has no schema
	schemaValidator apiservervalidation.SchemaValidator
	celValidator    *cel.Validator // nil if the schema has no x-kubernetes-validations
	status          *apiextensions.CustomResourceSubresourceStatus
	scale           *apiextensions.CustomResourceSubresourceScale
}

// Error is the error returned by Validate for an object that the apiserver
// would reject. Errs holds every problem with its field path.
type Error struct {
	GVK  schema.GroupVersionKind
	Name string // namespace/name or name, as given in the object
	Errs field.ErrorList
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %q is invalid (%d problem(s)):", e.GVK.GroupVersion(), e.GVK.Kind, e.Name, len(e.Errs))
	for _, fe := range e.Errs {
		b.WriteString("\n  - ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Paths returns the field paths of all problems (for test assertions).
func (e *Error) Paths() []string {
	out := make([]string, 0, len(e.Errs))
	for _, fe := range e.Errs {
		out = append(out, fe.Field)
	}
	return out
}

// Load reads CRD YAML files (each may hold several documents; empty documents
// are ignored, any other non-CRD document is an error) and returns a
// Validator. A group/kind defined twice is an error.
func Load(paths ...string) (*Validator, error) {
	v := &Validator{
		groups:   map[string][]string{},
		kinds:    map[schema.GroupKind]*crdInfo{},
		versions: map[schema.GroupVersionKind]*versionInfo{},
	}
	if len(paths) == 0 {
		return nil, errors.New("crdschema: Load needs at least one CRD file")
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("crdschema: %w", err)
		}
		docs, err := splitYAML(data)
		if err != nil {
			return nil, fmt.Errorf("crdschema: %s: %w", p, err)
		}
		n := 0
		for i, doc := range docs {
			if isEmptyDoc(doc) {
				continue
			}
			if err := v.addCRD(p, i, doc); err != nil {
				return nil, err
			}
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("crdschema: %s holds no CustomResourceDefinition", p)
		}
	}
	return v, nil
}

// LoadDirs loads every *.yaml / *.yml CRD file in the given directories (not
// recursively). Kustomize files (kustomization.yaml) are ignored; any other
// non-CRD document is an error.
func LoadDirs(dirs ...string) (*Validator, error) {
	var files []string
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("crdschema: %w", err)
		}
		n := 0
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
				continue
			}
			switch strings.ToLower(name) {
			case "kustomization.yaml", "kustomization.yml":
				continue
			}
			files = append(files, filepath.Join(d, name))
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("crdschema: no CRD files in %s", d)
		}
	}
	return Load(files...)
}

func (v *Validator) addCRD(path string, docIndex int, doc []byte) error {
	where := fmt.Sprintf("%s (document %d)", path, docIndex+1)

	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return fmt.Errorf("crdschema: %s: %w", where, err)
	}
	if tm.Kind != "CustomResourceDefinition" || tm.APIVersion != apiextensionsv1.SchemeGroupVersion.String() {
		return fmt.Errorf("crdschema: %s: not an %s CustomResourceDefinition (apiVersion %q, kind %q)",
			where, apiextensionsv1.SchemeGroupVersion, tm.APIVersion, tm.Kind)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(doc, crd); err != nil {
		return fmt.Errorf("crdschema: %s: %w", where, err)
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(crd)

	group, kind := crd.Spec.Group, crd.Spec.Names.Kind
	if group == "" || kind == "" || len(crd.Spec.Versions) == 0 {
		return fmt.Errorf("crdschema: %s: CRD %q lacks spec.group, spec.names.kind or spec.versions", where, crd.Name)
	}
	gk := schema.GroupKind{Group: group, Kind: kind}
	if prev, ok := v.kinds[gk]; ok {
		return fmt.Errorf("crdschema: %s: %s is already defined by CRD %q in %s", where, gk, prev.name, prev.source)
	}
	info := &crdInfo{
		name:                  crd.Name,
		source:                path,
		namespaced:            crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
		preserveUnknownFields: crd.Spec.PreserveUnknownFields,
	}

	for i := range crd.Spec.Versions {
		ver := &crd.Spec.Versions[i]
		info.versions = append(info.versions, ver.Name)
		vi, err := buildVersion(crd, ver)
		if err != nil {
			return fmt.Errorf("crdschema: %s: CRD %q version %s: %w", where, crd.Name, ver.Name, err)
		}
		vi.crd = info
		v.versions[vi.gvk] = vi
	}
	v.kinds[gk] = info
	v.groups[group] = append(v.groups[group], path)
	return nil
}

// buildVersion does for one CRD version what the apiserver's crdHandler does
// when it starts serving it (getOrCreateServingInfoFor + NewStrategy).
func buildVersion(crd *apiextensionsv1.CustomResourceDefinition, ver *apiextensionsv1.CustomResourceDefinitionVersion) (*versionInfo, error) {
	vi := &versionInfo{
		gvk:    schema.GroupVersionKind{Group: crd.Spec.Group, Version: ver.Name, Kind: crd.Spec.Names.Kind},
		served: ver.Served,
	}

	if ver.Subresources != nil {
		if ver.Subresources.Status != nil {
			vi.status = &apiextensions.CustomResourceSubresourceStatus{}
		}
		if ver.Subresources.Scale != nil {
			vi.scale = &apiextensions.CustomResourceSubresourceScale{}
			if err := apiextensionsv1.Convert_v1_CustomResourceSubresourceScale_To_apiextensions_CustomResourceSubresourceScale(ver.Subresources.Scale, vi.scale, nil); err != nil {
				return nil, fmt.Errorf("converting scale subresource: %w", err)
			}
		}
	}

	var internalProps *apiextensions.JSONSchemaProps
	if ver.Schema != nil && ver.Schema.OpenAPIV3Schema != nil {
		internal := &apiextensions.CustomResourceValidation{}
		if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(ver.Schema, internal, nil); err != nil {
			return nil, fmt.Errorf("converting schema to the internal version: %w", err)
		}
		internalProps = internal.OpenAPIV3Schema

		s, err := structuralschema.NewStructural(internalProps)
		if err != nil {
			return nil, fmt.Errorf("schema is not structural: %w", err)
		}
		if errs := structuralschema.ValidateStructural(field.NewPath("spec", "versions").Key(ver.Name).Child("schema", "openAPIV3Schema"), s); len(errs) > 0 {
			return nil, fmt.Errorf("schema is not structural: %w", errs.ToAggregate())
		}
		// Like the apiserver: work on a copy and drop defaults that pruning would remove.
		s = s.DeepCopy()
		if err := structuraldefaulting.PruneDefaults(s); err != nil {
			return nil, fmt.Errorf("pruning defaults: %w", err)
		}
		vi.structural = s
		// CEL programs are compiled here, once per version (NewStrategy does the same).
		vi.celValidator = cel.NewValidator(s, true, celconfig.PerCallLimit)
	}

	sv, _, err := apiservervalidation.NewSchemaValidator(internalProps)
	if err != nil {
		return nil, fmt.Errorf("building the OpenAPI schema validator: %w", err)
	}
	vi.schemaValidator = sv
	return vi, nil
}

// Kinds lists the served group/version/kind triples of the loaded CRDs as
// "group/version/Kind", sorted.
func (v *Validator) Kinds() []string {
	var out []string
	for gvk, vi := range v.versions {
		if vi.served {
			out = append(out, gvk.Group+"/"+gvk.Version+"/"+gvk.Kind)
		}
	}
	sort.Strings(out)
	return out
}

// HasGroup reports whether at least one CRD of the API group is loaded.
func (v *Validator) HasGroup(group string) bool { return len(v.groups[group]) > 0 }

// Validate checks one object as the apiserver would on create: it finds the
// CRD by apiVersion (group/version) and kind, and the version must be served;
// an unknown kind or version is an error. It returns nil, a plain error for
// an object that cannot be typed, or an *Error listing ALL problems with their
// field paths. obj is not modified.
func (v *Validator) Validate(obj map[string]any) error {
	if obj == nil {
		return errors.New("crdschema: nil object")
	}
	// Going through JSON deep-copies obj and makes it look exactly as it does
	// to the apiserver: Go ints become int64, other numbers float64, typed
	// values become their JSON form.
	return v.ValidateObject(obj)
}

// ValidateObject is Validate for any JSON-serialisable value, e.g. a typed Go
// struct with json tags: it is validated as its JSON encoding.
func (v *Validator) ValidateObject(obj any) error {
	j, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("crdschema: object is not JSON-serialisable: %w", err)
	}
	var u map[string]any
	if err := utiljson.Unmarshal(j, &u); err != nil {
		return fmt.Errorf("crdschema: object does not encode to a JSON object: %w", err)
	}
	if u == nil {
		return errors.New("crdschema: nil object")
	}
	return v.validate(u)
}

func (v *Validator) validate(u map[string]any) error {
	gvk, err := typeOf(u)
	if err != nil {
		return err
	}
	vi, err := v.lookup(gvk)
	if err != nil {
		return err
	}
	name := displayName(u)
	errs := vi.validateCreate(u)
	if len(errs) == 0 {
		return nil
	}
	return &Error{GVK: gvk, Name: name, Errs: errs}
}

func (v *Validator) lookup(gvk schema.GroupVersionKind) (*versionInfo, error) {
	if !v.HasGroup(gvk.Group) {
		return nil, fmt.Errorf("crdschema: no CRD loaded for API group %q (apiVersion %q, kind %q)", gvk.Group, gvk.GroupVersion(), gvk.Kind)
	}
	info, ok := v.kinds[gvk.GroupKind()]
	if !ok {
		var known []string
		for gk := range v.kinds {
			if gk.Group == gvk.Group {
				known = append(known, gk.Kind)
			}
		}
		sort.Strings(known)
		return nil, fmt.Errorf("crdschema: no kind %q in API group %q (loaded kinds: %s)", gvk.Kind, gvk.Group, strings.Join(known, ", "))
	}
	vi, ok := v.versions[gvk]
	if !ok {
		return nil, fmt.Errorf("crdschema: %s %s has no version %q (CRD %q has %s)", gvk.Group, gvk.Kind, gvk.Version, info.name, strings.Join(info.versions, ", "))
	}
	if !vi.served {
		return nil, fmt.Errorf("crdschema: version %q of %s %s is not served by CRD %q", gvk.Version, gvk.Group, gvk.Kind, info.name)
	}
	return vi, nil
}

// validateCreate mutates u (a private normalised copy) exactly as the
// apiserver's decode/default/PrepareForCreate steps would and returns every
// problem found.
func (vi *versionInfo) validateCreate(u map[string]any) field.ErrorList {
	var errs field.ErrorList
	s := vi.structural

	// --- decoding (unstructuredSchemaCoercer.apply with strict field validation) ---
	apiVersion, kind := u["apiVersion"], u["kind"]
	objectMeta, foundMeta, unknownMeta, err := schemaobjectmeta.GetObjectMetaWithOptions(u, schemaobjectmeta.ObjectMetaOptions{
		ReturnUnknownFieldPaths: true,
	})
	if err != nil {
		errs = append(errs, field.Invalid(field.NewPath("metadata"), nil, fmt.Sprintf("cannot be decoded as ObjectMeta: %v", err)))
		objectMeta, foundMeta, unknownMeta, _ = schemaobjectmeta.GetObjectMetaWithOptions(u, schemaobjectmeta.ObjectMetaOptions{
			DropMalformedFields:     true,
			ReturnUnknownFieldPaths: true,
		})
	}
	unknown := append([]string(nil), unknownMeta...)
	if !vi.crd.preserveUnknownFields {
		unknown = append(unknown, structuralpruning.PruneWithOptions(u, s, true, structuralschema.UnknownFieldPathOptions{
			TrackUnknownFieldPaths: true,
		})...)
		structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u, s)
	}
	ferr, coerced := schemaobjectmeta.CoerceWithOptions(nil, u, s, false, schemaobjectmeta.CoerceOptions{
		ReturnUnknownFieldPaths: true,
	})
	if ferr != nil {
		errs = append(errs, ferr)
	}
	unknown = append(unknown, coerced...)
	u["apiVersion"], u["kind"] = apiVersion, kind
	if foundMeta && objectMeta != nil {
		if err := schemaobjectmeta.SetObjectMeta(u, objectMeta); err != nil {
			errs = append(errs, field.InternalError(field.NewPath("metadata"), err))
		}
	}
	for _, p := range unknown {
		errs = append(errs, &field.Error{
			Type:     field.ErrorTypeForbidden,
			Field:    p,
			BadValue: "",
			Detail:   "unknown field (not in the CRD schema; strict field validation rejects it)",
		})
	}

	// --- defaulting (unstructuredDefaulter) ---
	if s != nil {
		structuraldefaulting.Default(u, s)
	}

	// --- rest.BeforeCreate / PrepareForCreate ---
	if vi.status != nil {
		delete(u, "status")
	}
	obj := &unstructured.Unstructured{Object: u}
	if vi.crd.namespaced {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(PlaceholderNamespace)
		}
	} else if obj.GetNamespace() != "" {
		obj.SetNamespace("") // the apiserver silently clears it for cluster-scoped kinds
	}
	if obj.GetName() == "" && obj.GetGenerateName() != "" {
		obj.SetName(names.SimpleNameGenerator.GenerateName(obj.GetGenerateName()))
	}
	obj.SetGeneration(1)

	// --- customResourceStrategy.Validate ---
	var verrs field.ErrorList
	verrs = append(verrs, metavalidation.ValidateObjectMetaAccessor(obj, vi.crd.namespaced, metavalidation.NameIsDNSSubdomain, field.NewPath("metadata"))...)
	verrs = append(verrs, apiservervalidation.ValidateCustomResource(nil, u, vi.schemaValidator)...)
	verrs = append(verrs, validateScale(u, vi.scale)...)
	verrs = append(verrs, schemaobjectmeta.Validate(nil, u, s, false)...)
	verrs = append(verrs, structurallisttype.ValidateListSetsAndMaps(nil, s, u)...)
	if vi.celValidator != nil {
		if blocked, ferr := hasBlockingErr(verrs); blocked {
			verrs = append(verrs, ferr)
		} else {
			celErrs, _ := vi.celValidator.Validate(context.Background(), nil, s, u, nil, celconfig.RuntimeCELCostBudget)
			verrs = append(verrs, celErrs...)
		}
	}
	return append(errs, verrs...)
}

// hasBlockingErr is a copy of the apiserver's rule (registry/customresource):
// CEL rules are not run on an object with these kinds of errors.
func hasBlockingErr(errs field.ErrorList) (bool, *field.Error) {
	for _, err := range errs {
		if err.Type == field.ErrorTypeNotSupported || err.Type == field.ErrorTypeRequired || err.Type == field.ErrorTypeTooLong || err.Type == field.ErrorTypeTooMany || err.Type == field.ErrorTypeTypeInvalid {
			return true, field.Invalid(nil, nil, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation")
		}
	}
	return false, nil
}

// validateScale is customResourceValidator.ValidateScaleSpec + ValidateScaleStatus.
func validateScale(u map[string]any, scale *apiextensions.CustomResourceSubresourceScale) field.ErrorList {
	if scale == nil {
		return nil
	}
	var errs field.ErrorList
	checkReplicas := func(p string) {
		n, _, err := unstructured.NestedInt64(u, strings.Split(strings.TrimPrefix(p, "."), ".")...)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(field.NewPath(p), n, err.Error()))
		case n < 0:
			errs = append(errs, field.Invalid(field.NewPath(p), n, "should be a non-negative integer"))
		case n > math.MaxInt32:
			errs = append(errs, field.Invalid(field.NewPath(p), n, fmt.Sprintf("should be less than or equal to %v", math.MaxInt32)))
		}
	}
	checkReplicas(scale.SpecReplicasPath)
	checkReplicas(scale.StatusReplicasPath)
	if scale.LabelSelectorPath != nil {
		p := *scale.LabelSelectorPath
		if sel, _, err := unstructured.NestedString(u, strings.Split(strings.TrimPrefix(p, "."), ".")...); err != nil {
			errs = append(errs, field.Invalid(field.NewPath(p), sel, err.Error()))
		}
	}
	return errs
}

// ValidateYAML splits a multi-document YAML stream and validates every
// document whose API group has a loaded CRD. Documents of other groups
// (built-in kinds such as v1 Namespace or apps/v1 Deployment) are skipped and
// returned in skipped as "Kind/name". A v1 List is expanded into its items.
// Empty documents are ignored; a document without apiVersion or kind, with
// duplicate keys, or of an unknown kind/version of a loaded group is an error.
// The returned error joins the errors of all failing documents.
func (v *Validator) ValidateYAML(data []byte) (skipped []string, err error) {
	docs, err := splitYAML(data)
	if err != nil {
		return nil, fmt.Errorf("crdschema: %w", err)
	}
	var all []error
	for i, doc := range docs {
		if isEmptyDoc(doc) {
			continue
		}
		u, err := decodeYAMLDoc(doc)
		if err != nil {
			all = append(all, fmt.Errorf("document %d: %w", i+1, err))
			continue
		}
		if u == nil {
			continue
		}
		items := []map[string]any{u}
		if u["apiVersion"] == "v1" && u["kind"] == "List" {
			items = nil
			list, _ := u["items"].([]any)
			for j, it := range list {
				m, ok := it.(map[string]any)
				if !ok {
					all = append(all, fmt.Errorf("document %d: items[%d] is not an object", i+1, j))
					continue
				}
				items = append(items, m)
			}
		}
		for _, item := range items {
			gvk, err := typeOf(item)
			if err != nil {
				all = append(all, fmt.Errorf("document %d: %w", i+1, err))
				continue
			}
			if !v.HasGroup(gvk.Group) {
				skipped = append(skipped, gvk.Kind+"/"+nameOf(item))
				continue
			}
			if err := v.validate(item); err != nil {
				all = append(all, fmt.Errorf("document %d (%s/%s): %w", i+1, gvk.Kind, nameOf(item), err))
			}
		}
	}
	return skipped, errors.Join(all...)
}

// splitYAML splits a YAML stream on document separators the way kubectl does.
func splitYAML(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
}

func isEmptyDoc(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") && line != "---" {
			return false
		}
	}
	return true
}

// decodeYAMLDoc converts one YAML document to JSON (rejecting duplicate keys)
// and decodes it the way the apiserver decodes JSON bodies (integers become
// int64, other numbers float64). It returns nil for a null document.
func decodeYAMLDoc(doc []byte) (map[string]any, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	if string(bytes.TrimSpace(j)) == "null" {
		return nil, nil
	}
	var u map[string]any
	if err := utiljson.Unmarshal(j, &u); err != nil {
		return nil, fmt.Errorf("not a YAML object: %w", err)
	}
	return u, nil
}

func typeOf(u map[string]any) (schema.GroupVersionKind, error) {
	apiVersion, _ := u["apiVersion"].(string)
	kind, _ := u["kind"].(string)
	if apiVersion == "" || kind == "" {
		return schema.GroupVersionKind{}, fmt.Errorf("crdschema: object %q has no apiVersion and/or kind (apiVersion %v, kind %v)", nameOf(u), u["apiVersion"], u["kind"])
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("crdschema: object %q: %w", nameOf(u), err)
	}
	return gv.WithKind(kind), nil
}

func nameOf(u map[string]any) string {
	md, _ := u["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	if name == "" {
		if gn, _ := md["generateName"].(string); gn != "" {
			return gn + "*"
		}
	}
	return name
}

func displayName(u map[string]any) string {
	md, _ := u["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	if ns != "" {
		return ns + "/" + nameOf(u)
	}
	return nameOf(u)
}
