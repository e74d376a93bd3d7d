package manifests

import (
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The serve install builds, runs `offshoot serve` with flags the binary
// has, probes the endpoints serve exposes, and keeps secrets out of git.
func TestServeInstallBuilds(t *testing.T) {
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "serve")
	if err != nil {
		t.Fatal(err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	y := string(out)
	for _, want := range []string{"kind: Deployment", "kind: Service", "namespace: offshoot-system", "- serve",
		"--webhook-secret-file=/etc/offshoot/webhook-secret", "path: /readyz", "path: /healthz", "secretKeyRef"} {
		if !strings.Contains(y, want) {
			t.Errorf("built serve install lacks %q", want)
		}
	}
	if strings.Contains(y, "kind: Secret\n") {
		t.Error("the install must reference the Secret, never carry it")
	}
	// The flags the Deployment passes exist in cmd/offshoot/serve.go.
	src, err := os.ReadFile("../cmd/offshoot/serve.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{`"listen"`, `"webhook-secret-file"`, `"reconcile-interval"`} {
		if !strings.Contains(string(src), flag) {
			t.Errorf("offshoot serve has no flag %s", flag)
		}
	}
}
