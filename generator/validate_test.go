package generator

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/offshoot-dev/offshoot/clone"
)

// Builds run in parallel (a Validator) give byte-for-byte what one-by-one
// builds give; under -race this also checks kustomize's shared state.
func TestValidatorMatchesSerialBuilds(t *testing.T) {
	r := demo(t)
	var reqs []Request
	for i := 0; i < 12; i++ {
		parent := []string{"master", "staging", "feature_1"}[i%3]
		reqs = append(reqs, Request{Op: OpSync, Branch: fmt.Sprintf("feature/x-%d", i), Parent: parent, SHA: fmt.Sprintf("%07x", 0xabc0000+i), Now: t0.Add(time.Hour), WantBuilt: true})
	}
	reqs = append(reqs, Request{Op: OpSync, Branch: "staging", SHA: "9999999", Now: t0.Add(time.Hour), WantBuilt: true})
	var plans []*Plan
	var serial [][]byte
	for _, req := range reqs {
		p, err := PlanUnchecked(r.cfg, r.fs, req)
		if err != nil {
			t.Fatal(err)
		}
		if p.Validated() || p.Built != nil {
			t.Fatal("PlanUnchecked validated the plan")
		}
		plans = append(plans, p)
		m, err := PlanChecked(r.cfg, r.fs, req)
		if err != nil {
			t.Fatal(err)
		}
		serial = append(serial, m.Built)
	}
	// One plan with a broken overlay: only its own error.
	bad, err := PlanUnchecked(r.cfg, r.fs, Request{Op: OpSync, Branch: "feature/broken", Parent: "master", SHA: "bbbbbbb", Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	bad.Dirs[EnvDir(bad.Env.Name)][KustomizationFile] = []byte("resources:\n- nowhere.yaml\n")
	plans = append(plans, bad)

	v := NewValidator(r.fs, len(plans), 4)
	for i, p := range plans {
		v.Add(i, p)
	}
	errs := v.Wait()
	for i := range reqs {
		if errs[i] != nil {
			t.Fatalf("%s: %v", reqs[i].Branch, errs[i])
		}
		if !plans[i].Validated() || string(plans[i].Built) != string(serial[i]) || len(serial[i]) == 0 {
			t.Fatalf("%s: parallel build differs from the serial one", reqs[i].Branch)
		}
	}
	if e := errs[len(plans)-1]; e == nil || !strings.Contains(e.Error(), "nowhere.yaml") || bad.Validated() {
		t.Fatalf("broken overlay: %v", e)
	}
}

// Without WantBuilt the checks still run and still refuse a bad build.
func TestValidateWithoutYAMLStillChecks(t *testing.T) {
	r := demo(t)
	p := r.must(Request{Op: OpSync, Branch: "feature_2", Parent: "master", SHA: "1234567"})
	if p.Built != nil || !p.Validated() {
		t.Fatalf("Built %d bytes, validated %v", len(p.Built), p.Validated())
	}
	p, err := PlanUnchecked(r.cfg, r.fs, Request{Op: OpSync, Branch: "feature_3", Parent: "master", SHA: "7654321", Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// An overlay that moves the Deployment out of the env's namespace.
	dir := p.Dirs[EnvDir(p.Env.Name)]
	dir[KustomizationFile] = []byte(strings.Replace(string(dir[KustomizationFile]), "namespace: "+p.Env.Namespace, "namespace: kube-system", 1))
	if err := p.Validate(r.fs); err == nil || !strings.Contains(err.Error(), "kube-system") {
		t.Fatalf("want the namespace check to refuse, got %v", err)
	}
}

// The kustomize-built Cluster goes through clone.CheckSafety too: an
// overlay patch that adds a second Barman Cloud plugin entry (which would
// receive archive calls into the parent's store) is refused, nothing is
// committed.
func TestBuiltClusterEveryPluginEntryChecked(t *testing.T) {
	r := demo(t)
	p, err := PlanUnchecked(r.cfg, r.fs, Request{Op: OpSync, Branch: "feature_3", Parent: "staging", SHA: "7654321", Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	dir := p.Dirs[EnvDir(p.Env.Name)]
	patch := `- target:
    kind: Cluster
  patch: |-
    - op: add
      path: /spec/plugins/-
      value:
        name: barman-cloud.cloudnative-pg.io
        parameters:
          barmanObjectName: parent-archive
          serverName: ` + p.Env.Database.Source.ServerName + "\n"
	k := strings.Replace(string(dir[KustomizationFile]), "patches:\n", "patches:\n"+patch, 1)
	if k == string(dir[KustomizationFile]) {
		t.Fatal("kustomization has no patches")
	}
	dir[KustomizationFile] = []byte(k)
	err = p.Validate(r.fs)
	if !errors.Is(err, clone.ErrUnsafe) || !strings.Contains(err.Error(), "without isWALArchiver") {
		t.Fatalf("want the second plugin entry refused, got %v", err)
	}
}
