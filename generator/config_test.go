package generator

import (
	"errors"
	"strings"
	"testing"

	"github.com/offshoot-dev/offshoot/clone"
)

func scaffoldConfig(t *testing.T, o InitOptions) []byte {
	t.Helper()
	files, err := Scaffold(o)
	if err != nil {
		t.Fatal(err)
	}
	return files[ConfigFile]
}

func TestScaffoldedConfigIsValidAndKeepsComments(t *testing.T) {
	data := scaffoldConfig(t, InitOptions{App: "tea", Image: "registry.local/tea", Root: "master", Protected: []string{"staging", "release/*"}, EndpointURL: "http://minio:9000"})
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.App.Name != "tea" || cfg.App.Image != "registry.local/tea" || cfg.Branches.Root != "master" || cfg.App.NamespacePrefix != "tea-" {
		t.Fatalf("init options not applied: %+v", cfg.App)
	}
	if cfg.Database.ObjectStore.EndpointURL != "http://minio:9000" {
		t.Fatalf("endpoint not applied: %q", cfg.Database.ObjectStore.EndpointURL)
	}
	if !cfg.IsProtected("release/1.2") || !cfg.IsProtected("master") || cfg.IsProtected("feature_1") {
		t.Fatal("protected patterns not applied")
	}
	if !strings.Contains(string(data), "# Every field is checked") {
		t.Fatal("comments of the template were lost")
	}
}

func TestConfigUnknownFieldIsNamed(t *testing.T) {
	data := strings.Replace(string(scaffoldConfig(t, InitOptions{})), "  instances: 1", "  instancez: 1", 1)
	_, err := ParseConfig([]byte(data))
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "instancez") || !strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("want an unknown-field error naming instancez, got %v", err)
	}
}

func TestConfigInvalidValuesAreNamed(t *testing.T) {
	base := string(scaffoldConfig(t, InitOptions{}))
	for _, tc := range []struct{ from, to, field string }{
		{"name: shop", "name: Shop_App", "app.name"},
		{"image: ghcr.io/example/shop", "image: ghcr.io/example/shop:latest", "app.image"},
		{"port: 8080", "port: 70000", "app.port"},
		{`hostname: "{env}.preview.example.com"`, `hostname: "preview.example.com"`, "app.hostname"},
		{"root: main", "root: a..b", "branches.root"},
		{"instances: 1", "instances: 0", "database.instances"},
		{"storageSize: 1Gi", "storageSize: lots", "database.storageSize"},
		{"destinationPath: s3://shop-db-backups/offshoot", "destinationPath: /tmp/backups", "database.objectStore.destinationPath"},
		{"source: replicated", "source: vault", "database.objectStore.credentials.source"},
		{"from: offshoot-system/backup-credentials", "from: nowhere", "database.objectStore.credentials.replicated.from"},
		{`schedule: "0 0 2 * * *"`, `schedule: "0 2 * * *"`, "database.backup.schedule"},
		{"retention: 7d", "retention: forever", "database.backup.retention"},
		{"kind: Config", "kind: Konfig", "kind"},
		{"port: 8080", `port: "8080"`, "port"},
	} {
		data := strings.Replace(base, tc.from, tc.to, 1)
		if data == base {
			t.Fatalf("template has no %q", tc.from)
		}
		_, err := ParseConfig([]byte(data))
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s → %s: want an error naming %s, got %v", tc.from, tc.to, tc.field, err)
		}
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	base := string(scaffoldConfig(t, InitOptions{}))
	data := strings.NewReplacer("instances: 1", "instances: 0", "retention: 7d", "retention: x").Replace(base)
	_, err := ParseConfig([]byte(data))
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Errs) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
	var fe *clone.FieldError
	if !errors.As(ce.Errs[0], &fe) {
		t.Fatalf("want field errors, got %T", ce.Errs[0])
	}
}

// instanceSidecarConfiguration and cloneGuard are read from offshoot.yaml
// strictly and every bad value is named with its field path.
func TestConfigSidecarAndGuard(t *testing.T) {
	base := string(scaffoldConfig(t, InitOptions{}))
	good := strings.Replace(base, "  backup:\n", `    instanceSidecarConfiguration:
      env:
        - name: AWS_REQUEST_CHECKSUM_CALCULATION
          value: when_required
      resources:
        requests: {cpu: 50m, memory: 128Mi}
  cloneGuard:
    image: registry.local/barman-tools:1
    timeout: 2h
  backup:
`, 1)
	if good == base {
		t.Fatal("template has no backup section")
	}
	cfg, err := ParseConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if sc := cfg.Database.ObjectStore.InstanceSidecarConfiguration; sc == nil || sc.Env[0].Value != "when_required" || sc.Resources.Requests["cpu"] != "50m" {
		t.Fatalf("sidecar: %+v", sc)
	}
	if cfg.Database.CloneGuard.Timeout != "2h" {
		t.Fatalf("guard: %+v", cfg.Database.CloneGuard)
	}
	bad := strings.NewReplacer("AWS_REQUEST_CHECKSUM_CALCULATION", "AWS-BAD", "timeout: 2h", "timeout: 2 hours", "cpu: 50m", "cpu: fast").Replace(good)
	_, err = ParseConfig([]byte(bad))
	for _, field := range []string{
		"database.objectStore.instanceSidecarConfiguration.env[0].name",
		"database.objectStore.instanceSidecarConfiguration.resources.requests.cpu",
		"database.cloneGuard.timeout",
	} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("want an error naming %s, got %v", field, err)
		}
	}
	typo := strings.Replace(good, "      resources:\n        requests", "      resource:\n        requests", 1)
	if _, err := ParseConfig([]byte(typo)); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("a misspelt sidecar field must be refused: %v", err)
	}
}
