package e2e

// CloudNativePG v1.30.0 and the Barman Cloud plugin v0.14.0 on the real
// node, installed from the release manifests in their module zips, patched
// only where this machine needs it:
//
//   - imagePullPolicy IfNotPresent (the images are imported, not pulled);
//   - the operator's hostAliases map barman-cloud.cnpg-system.svc to the
//     plugin Service's fixed ClusterIP (no DNS here: the operator dials
//     "<service>.<namespace>.svc:<cnpg.io/pluginPort>");
//   - the plugin: the release's image names (the module's manifest names
//     the :main testing images), no cert-manager (its Certificates and
//     Issuer dropped; the TLS Secrets made here), and its CRD left out: the
//     e2e keeps v0.15.0's CRD (install), which offshoot's manifests are
//     validated against; v0.14.0's matches it. v0.15.0 itself cannot be
//     built from the module proxy (barman-cloud v0.6.0, machinery v0.6.0
//     are refused).
//
// Also here: the storage (static hostPath PVs of class "manual", their
// directories owned by 26:26 since hostPath ignores fsGroup), the S3 server
// and the per-namespace credentials.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const (
	cnpgReleaseModule   = "github.com/cloudnative-pg/cloudnative-pg@v1.30.0"
	pluginReleaseModule = "github.com/cloudnative-pg/plugin-barman-cloud@v0.14.0"
	pluginServiceIP     = "10.96.0.90"
	pluginHost          = "barman-cloud.cnpg-system.svc"
	sidecarImage        = "ghcr.io/cloudnative-pg/plugin-barman-cloud-sidecar:v0.14.0"
	pluginImage         = "ghcr.io/cloudnative-pg/plugin-barman-cloud:v0.14.0"
	s3Port              = 9000
	s3Bucket            = "backups"
	credSecret          = "offshoot-backup-credentials"
)

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

func readDocs(t testing.TB, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	for _, d := range docSep.Split(string(b), -1) {
		if strings.TrimSpace(d) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if m != nil {
			docs = append(docs, m)
		}
	}
	return docs
}

func writeDocs(t testing.TB, path string, docs []map[string]any) {
	t.Helper()
	var sb strings.Builder
	for _, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString("---\n")
		sb.Write(b)
	}
	writeFile(t, path, sb.String())
}

func containersOf(d map[string]any) []any {
	cs, _ := field(d, "spec", "template", "spec", "containers").([]any)
	return cs
}

// installCNPG applies the operator's release manifest and waits for its
// Deployment and its validating webhook (API server → ClusterIP → pod).
func (n *node) installCNPG(t *testing.T) {
	t0 := time.Now()
	docs := readDocs(t, filepath.Join(moduleDir(t, cnpgReleaseModule), "releases", "cnpg-1.30.0.yaml"))
	patched := false
	for _, d := range docs {
		if str(d, "kind") == "Deployment" && str(d, "metadata", "name") == "cnpg-controller-manager" {
			for _, c := range containersOf(d) {
				c.(map[string]any)["imagePullPolicy"] = "IfNotPresent"
			}
			field(d, "spec", "template", "spec").(map[string]any)["hostAliases"] = []any{
				map[string]any{"ip": pluginServiceIP, "hostnames": []any{pluginHost}}}
			patched = true
		}
	}
	if !patched {
		t.Fatal("cnpg-1.30.0.yaml: no Deployment cnpg-controller-manager")
	}
	p := filepath.Join(n.dir, "manifests", "cnpg-1.30.0.yaml")
	writeDocs(t, p, docs)
	n.kubectl(t, "apply", "--server-side", "--force-conflicts", "-f", p)
	n.kubectl(t, "-n", "cnpg-system", "rollout", "status", "deploy/cnpg-controller-manager", "--timeout=300s")
	probe := fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: webhook-probe, namespace: default}
spec:
  instances: 1
  imageName: %s
  storage: {size: 1Gi}
  bootstrap:
    initdb: {database: app, owner: app}
    recovery: {source: nowhere}
`, n.prep.PGImage)
	waitFor(t, "CNPG validating webhook", 180*time.Second, func() error {
		out, err := n.kubectlIn([]byte(probe), "apply", "--dry-run=server", "-f", "-")
		if err != nil && strings.Contains(err.Error(), "Only one bootstrap method") {
			return nil
		}
		return fmt.Errorf("webhook not denying yet: %v %s", err, out)
	})
	n.mark("CNPG operator v1.30.0 available, its webhook denies a bad Cluster", time.Since(t0))
}

// installPlugin applies the Barman Cloud plugin with TLS made here and waits
// until the operator has registered it.
func (n *node) installPlugin(t *testing.T) {
	t0 := time.Now()
	docs := readDocs(t, filepath.Join(moduleDir(t, pluginReleaseModule), "manifest.yaml"))
	var out []map[string]any
	for _, d := range docs {
		kind, name := str(d, "kind"), str(d, "metadata", "name")
		switch {
		case strings.HasPrefix(str(d, "apiVersion"), "cert-manager.io/"):
			continue // no cert-manager: the Secrets below
		case kind == "CustomResourceDefinition":
			continue // v0.15.0's CRD stays (install)
		case kind == "Secret" && field(d, "data", "SIDECAR_IMAGE") != nil:
			d["data"].(map[string]any)["SIDECAR_IMAGE"] = base64.StdEncoding.EncodeToString([]byte(sidecarImage))
		case kind == "Deployment" && name == "barman-cloud":
			for _, c := range containersOf(d) {
				c.(map[string]any)["image"] = pluginImage
				c.(map[string]any)["imagePullPolicy"] = "IfNotPresent"
			}
		case kind == "Service" && name == "barman-cloud":
			d["spec"].(map[string]any)["clusterIP"] = pluginServiceIP
		}
		out = append(out, d)
	}
	// The operator trusts the server Secret's tls.crt, the plugin the client
	// Secret's: each tls.crt is leaf + CA.
	ca := newCA(t, "barman-cloud-ca")
	server := ca.leaf(t, "barman-cloud", []string{"barman-cloud", "barman-cloud.cnpg-system", pluginHost, pluginHost + ".cluster.local"}, nil, x509.ExtKeyUsageServerAuth)
	client := ca.leaf(t, "barman-cloud-client", nil, nil, x509.ExtKeyUsageClientAuth)
	for _, s := range []struct {
		name string
		ck   *certKey
	}{{"barman-cloud-server-tls", server}, {"barman-cloud-client-tls", client}} {
		out = append(out, map[string]any{"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
			"metadata": map[string]any{"name": s.name, "namespace": "cnpg-system"},
			"data": map[string]any{
				"tls.crt": base64.StdEncoding.EncodeToString(append(append([]byte{}, s.ck.certPEM...), ca.certPEM...)),
				"tls.key": base64.StdEncoding.EncodeToString(s.ck.keyPEM),
				"ca.crt":  base64.StdEncoding.EncodeToString(ca.certPEM),
			}})
	}
	p := filepath.Join(n.dir, "manifests", "plugin-barman-cloud-v0.14.0.yaml")
	writeDocs(t, p, out)
	n.kubectl(t, "apply", "--server-side", "--force-conflicts", "-f", p)
	n.kubectl(t, "-n", "cnpg-system", "rollout", "status", "deploy/barman-cloud", "--timeout=300s")
	waitFor(t, "plugin registered with the operator", 180*time.Second, func() error {
		out, err := n.kubectlErr("-n", "cnpg-system", "get", "events", "--field-selector", "reason=PluginRegistered", "-o", "name")
		if err != nil || strings.TrimSpace(out) == "" {
			return fmt.Errorf("no PluginRegistered event: %v", err)
		}
		return nil
	})
	n.mark("Barman Cloud plugin v0.14.0 available and registered", time.Since(t0))
}

// storage creates StorageClass "manual" and count static hostPath PVs.
func (n *node) storage(t *testing.T, count int) {
	n.pvDir = filepath.Join(n.dir, "pv")
	var sb strings.Builder
	sb.WriteString(`apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: manual}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: Immediate
reclaimPolicy: Retain
`)
	for i := 0; i < count; i++ {
		d := filepath.Join(n.pvDir, fmt.Sprintf("pv-%02d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, 26, 26); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, `---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-%02d}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: manual
  hostPath: {path: %s, type: Directory}
`, i, d)
	}
	if out, err := n.kubectlIn([]byte(sb.String()), "apply", "-f", "-"); err != nil {
		t.Fatalf("storage: %v %s", err, out)
	}
}

// startS3 runs bin/e2es3 on the node address.
func (n *node) startS3(t *testing.T) {
	binDir := abs(t, mustEnv(t, "E2E_BIN_DIR", "bin"))
	n.s3Addr = fmt.Sprintf("%s:%d", nodeIP, s3Port)
	n.s3Audit = filepath.Join(n.logs, "s3-audit.tsv")
	n.s3 = start(t, n.logs, "s3", nil, filepath.Join(binDir, "e2es3"), "-listen", n.s3Addr, "-audit", n.s3Audit, "-buckets", s3Bucket)
	n.components["s3"] = n.s3
	waitFor(t, "s3", 30*time.Second, func() error {
		_, err := n.s3List("")
		return err
	})
}

// accessKey is a namespace's own access key id.
func accessKey(ns string) string {
	h := sha256.Sum256([]byte(ns))
	return "AK" + strings.ToUpper(hex.EncodeToString(h[:7]))
}

// envController plays two parts of a real cluster that this one lacks:
//
//   - the namespace-wide policy that offshoot's `credentials.source:
//     existing` expects: every environment namespace gets its own access key
//     in Secret offshoot-backup-credentials, within a second of the namespace;
//   - an ingress controller publishing its address: Argo CD's Ingress health
//     is Progressing until status.loadBalancer.ingress is set, so each
//     Ingress gets the node address (nothing routes it: the e2e reaches
//     each app through its Service).
func (n *node) envController(ctx context.Context, t *testing.T, keys *sync.Map) {
	done := map[string]bool{}
	for ctx.Err() == nil {
		if out, err := n.kubectlErr("get", "ingresses.networking.k8s.io", "-A", "-o",
			`jsonpath={range .items[?(@.status.loadBalancer.ingress)]}{.metadata.namespace}/{.metadata.name} {end}`); err == nil {
			published := map[string]bool{}
			for _, k := range strings.Fields(out) {
				published[k] = true
			}
			all, _ := n.kubectlErr("get", "ingresses.networking.k8s.io", "-A", "-o",
				`jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}`)
			for _, k := range strings.Fields(all) {
				if published[k] {
					continue
				}
				ns, name, _ := strings.Cut(k, "/")
				_, _ = n.kubectlErr("patch", "ingress", name, "-n", ns, "--subresource=status", "--type=merge",
					"-p", `{"status":{"loadBalancer":{"ingress":[{"ip":"`+nodeIP+`"}]}}}`)
			}
		}
		out, err := n.kubectlErr("get", "namespaces", "-l", "offshoot.dev/env", "-o", "jsonpath={.items[*].metadata.name}")
		if err == nil {
			for _, ns := range strings.Fields(out) {
				if done[ns] {
					continue
				}
				k := accessKey(ns)
				secret := fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: %s, namespace: %s}
stringData: {ACCESS_KEY_ID: %s, ACCESS_SECRET_KEY: secret-of-%s}
`, credSecret, ns, k, k)
				if _, err := n.kubectlIn([]byte(secret), "apply", "-f", "-"); err == nil {
					done[ns] = true
					keys.Store(k, ns)
					fmt.Printf("e2e-node: credentials %s/%s: access key %s\n", ns, credSecret, k)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// s3Object is one entry of a listing.
type s3Object struct {
	Key  string `xml:"Key"`
	Size int64  `xml:"Size"`
	ETag string `xml:"ETag"`
}

// s3Write is one write of the audit log.
type s3Write struct {
	time, method, path, key string
}

func (n *node) s3Writes(t testing.TB) []s3Write {
	f, err := os.Open(n.s3Audit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ws []s3Write
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		p := strings.Split(sc.Text(), "\t")
		if len(p) < 7 {
			continue
		}
		if p[1] == "PUT" || p[1] == "POST" || p[1] == "DELETE" {
			ws = append(ws, s3Write{time: p[0], method: p[1], path: p[2], key: p[6]})
		}
	}
	return ws
}

// jsonOut runs kubectl -o json and decodes it.
func (n *node) jsonOut(t testing.TB, args ...string) map[string]any {
	t.Helper()
	out := n.kubectl(t, append(args, "-o", "json")...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// s3List lists the bucket's objects under prefix (ListObjectsV2, paged).
func (n *node) s3List(prefix string) ([]s3Object, error) {
	var all []s3Object
	token := ""
	for {
		q := url.Values{"list-type": {"2"}, "prefix": {prefix}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		resp, err := http.Get(fmt.Sprintf("http://%s/%s?%s", n.s3Addr, s3Bucket, q.Encode()))
		if err != nil {
			return nil, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("list %q: %s: %s", prefix, resp.Status, b)
		}
		var page struct {
			Contents              []s3Object `xml:"Contents"`
			IsTruncated           bool       `xml:"IsTruncated"`
			NextContinuationToken string     `xml:"NextContinuationToken"`
		}
		if err := xml.Unmarshal(b, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Contents...)
		if !page.IsTruncated || page.NextContinuationToken == "" {
			break
		}
		token = page.NextContinuationToken
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Key < all[j].Key })
	return all, nil
}
