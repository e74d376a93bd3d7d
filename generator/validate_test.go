package generator

import (
	"fmt"
	"strings"
	"testing"
	"time"
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
