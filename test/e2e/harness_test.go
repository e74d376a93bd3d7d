package e2e

// The local cluster: etcd, redis, kube-apiserver, kube-controller-manager and
// Argo CD's application controller, ApplicationSet controller, repo-server
// and API server, all on 127.0.0.1, all from the one multi-call binary
// bin/e2ecluster (see cmd/e2ecluster), plus the git smart-HTTP server of
// the main module (hack/gitserver) serving the environments repo.
//
// Every process runs in its own process group, its output goes to
// <workdir>/logs/<name>.log, and it is stopped on every way out: the end of
// the test, a failure, a panic, or SIGINT/SIGTERM (TestMain).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	procsMu sync.Mutex
	procs   []*proc
)

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

func TestMain(m *testing.M) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "\ne2e: %v: stopping every component\n", s)
		runTeardowns()
		stopAll()
		os.Exit(130)
	}()
	code := m.Run()
	runTeardowns()
	stopAll()
	os.Exit(code)
}

var (
	teardownMu sync.Mutex
	teardowns  []func()
)

// addTeardown registers f to run on every way out (test end, failure,
// SIGINT/SIGTERM), newest first, before the remaining processes stop.
func addTeardown(f func()) {
	teardownMu.Lock()
	teardowns = append(teardowns, f)
	teardownMu.Unlock()
}

// teardownRun is held while teardowns run: a second caller (the signal
// handler while the test's own cleanup runs) waits for the first to finish
// instead of exiting under it.
var teardownRun sync.Mutex

// runTeardowns runs (and forgets) the registered teardowns, newest first.
func runTeardowns() {
	teardownRun.Lock()
	defer teardownRun.Unlock()
	teardownMu.Lock()
	fs := teardowns
	teardowns = nil
	teardownMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// start runs a component in its own process group, its output in logs/name.log.
func start(t testing.TB, logs, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(logs, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "### %s %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: f}
	go func() { _ = cmd.Wait(); close(p.done) }()
	procsMu.Lock()
	procs = append(procs, p)
	procsMu.Unlock()
	return p
}

// stop ends one process group: SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.log.Close()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stopAll stops every component, newest first.
func stopAll() {
	procsMu.Lock()
	ps := procs
	procs = nil
	procsMu.Unlock()
	for i := len(ps) - 1; i >= 0; i-- {
		ps[i].stop()
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitFor(t testing.TB, what string, timeout time.Duration, ok func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = ok(); err == nil {
			return
		}
		time.Sleep(150 * time.Millisecond)
	}
	t.Fatalf("%s: not ready after %s: %v", what, timeout, err)
}

func waitTCP(t testing.TB, what string, port int, p *proc) {
	t.Helper()
	waitFor(t, what, 90*time.Second, func() error {
		if p != nil && p.exited() {
			t.Fatalf("%s exited: see %s", what, p.log.Name())
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// cluster is the running system.
type cluster struct {
	dir, logs     string
	bin           string // dir of role links + kustomize
	e2ecluster    string
	offshoot      string
	gitserverB    string
	kubeconfig    string
	token         string // apiserver admin token
	apiPort       int
	argoPort      int
	gitAddr       string
	gitRoot       string
	gitServer     *proc
	env           []string // for Argo CD components
	argoToken     string   // API key of Argo CD account "offshoot"
	appsetHook    int      // port of the ApplicationSet controller's webhook
	hookSecret    string   // argocd-secret's webhook.github.secret
	adminPassword string
	redisAddr     string
	components    map[string]*proc
	startupTime   time.Duration
	realHealth    bool // offshoot's own Cluster health check (a real operator runs)
}

func mustEnv(t testing.TB, k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func abs(t testing.TB, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startCluster brings up everything but Argo CD's configuration.
func startCluster(t *testing.T) *cluster {
	t0 := time.Now()
	binDir := abs(t, mustEnv(t, "E2E_BIN_DIR", "bin"))
	c := &cluster{
		e2ecluster: filepath.Join(binDir, "e2ecluster"),
		offshoot:   filepath.Join(binDir, "offshoot"),
		gitserverB: filepath.Join(binDir, "gitserver"),
		components: map[string]*proc{},
	}
	for _, b := range []string{c.e2ecluster, c.offshoot, c.gitserverB, filepath.Join(binDir, "kustomize")} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%v: run `make e2e` from the repository root, which builds it", err)
		}
	}
	for _, b := range []string{"etcd", "redis-server", "git"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s not found: apt-get install -y etcd-server redis-server git", b)
		}
	}
	dir := os.Getenv("E2E_WORKDIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "offshoot-e2e-"); err != nil {
			t.Fatal(err)
		}
	}
	c.dir = abs(t, dir)
	c.logs = filepath.Join(c.dir, "logs")
	c.bin = filepath.Join(c.dir, "bin")
	for _, d := range []string{c.logs, c.bin, filepath.Join(c.dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("e2e: logs of every component in %s\n", c.logs)
	t.Cleanup(func() { fmt.Printf("e2e: logs of every component in %s\n", c.logs) })
	t.Cleanup(stopAll)
	for _, role := range []string{"kube-apiserver", "kube-controller-manager", "kubectl", "argocd-server",
		"argocd-application-controller", "argocd-repo-server", "argocd-applicationset-controller", "argocd", "argocd-git-ask-pass"} {
		if err := os.Symlink(c.e2ecluster, filepath.Join(c.bin, role)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(binDir, "kustomize"), filepath.Join(c.bin, "kustomize")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}

	// Keys and tokens, new for every run.
	pki := filepath.Join(c.dir, "pki")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	writeFile(t, filepath.Join(pki, "sa.key"), string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	writeFile(t, filepath.Join(pki, "sa.pub"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	c.token = randHex(24)
	writeFile(t, filepath.Join(pki, "tokens.csv"), c.token+",admin,admin-uid,system:masters\n")

	// etcd
	etcdClient, etcdPeer := freePort(t), freePort(t)
	etcd := start(t, c.logs, "etcd", nil, "etcd",
		"--name", "e2e", "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdClient),
		"--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdClient),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer),
		"--initial-cluster", fmt.Sprintf("e2e=http://127.0.0.1:%d", etcdPeer),
		"--unsafe-no-fsync", "--listen-metrics-urls", "")
	c.components["etcd"] = etcd
	// redis
	redisPort := freePort(t)
	redis := start(t, c.logs, "redis", nil, "redis-server",
		"--bind", "127.0.0.1", "--port", fmt.Sprint(redisPort), "--save", "", "--appendonly", "no",
		"--dir", c.dir, "--protected-mode", "yes")
	c.components["redis"] = redis
	c.redisAddr = fmt.Sprintf("127.0.0.1:%d", redisPort)
	waitTCP(t, "etcd", etcdClient, etcd)

	// kube-apiserver
	c.apiPort = freePort(t)
	api := start(t, c.logs, "kube-apiserver", nil, filepath.Join(c.bin, "kube-apiserver"),
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdClient),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", c.apiPort), "--cert-dir="+filepath.Join(pki, "apiserver"),
		"--token-auth-file="+filepath.Join(pki, "tokens.csv"), "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16", "--enable-priority-and-fairness=false",
		"--endpoint-reconciler-type=none")
	c.components["kube-apiserver"] = api
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	writeFile(t, c.kubeconfig, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://127.0.0.1:%d
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: admin, namespace: argocd}
current-context: e2e
`, c.apiPort, c.token))
	waitFor(t, "kube-apiserver /readyz", 90*time.Second, func() error {
		if api.exited() {
			t.Fatalf("kube-apiserver exited: see %s", api.log.Name())
		}
		_, err := c.kubectlErr("get", "--raw", "/readyz")
		return err
	})
	kcmPort := freePort(t)
	c.components["kube-controller-manager"] = start(t, c.logs, "kube-controller-manager", nil, filepath.Join(c.bin, "kube-controller-manager"),
		"--kubeconfig="+c.kubeconfig, "--authentication-kubeconfig="+c.kubeconfig, "--authorization-kubeconfig="+c.kubeconfig,
		"--leader-elect=false", "--service-account-private-key-file="+filepath.Join(pki, "sa.key"),
		"--root-ca-file="+filepath.Join(pki, "apiserver", "apiserver.crt"), "--controllers=*",
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", kcmPort), "--use-service-account-credentials=false")

	// The environments repo's git server.
	c.gitRoot = filepath.Join(c.dir, "git")
	c.gitAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.startGit(t, true)

	// Argo CD's components share this environment.
	home := filepath.Join(c.dir, "home")
	for _, d := range []string{"tls", "ssh", "gnupg"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(home, "ssh", "ssh_known_hosts"), "")
	c.env = []string{
		"KUBECONFIG=" + c.kubeconfig, "ARGOCD_FAKE_IN_CLUSTER=true", "ARGOCD_GPG_ENABLED=false",
		"ARGOCD_TLS_DATA_PATH=" + filepath.Join(home, "tls"), "ARGOCD_SSH_DATA_PATH=" + filepath.Join(home, "ssh"),
		"ARGOCD_GNUPGHOME=" + filepath.Join(home, "gnupg"), "HOME=" + home, "TMPDIR=" + filepath.Join(c.dir, "tmp"),
		"PATH=" + c.bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"ARGOCD_BINARY_NAME=", // roles come from argv[0]
	}
	c.startupTime = time.Since(t0)
	return c
}

func (c *cluster) startGit(t testing.TB, create bool) {
	args := []string{"-root", c.gitRoot, "-addr", c.gitAddr}
	if create {
		args = append(args, "-create", "shop-environments")
	}
	c.gitServer = start(t, c.logs, "gitserver", nil, c.gitserverB, args...)
	var port int
	fmt.Sscanf(c.gitAddr[strings.LastIndex(c.gitAddr, ":")+1:], "%d", &port)
	waitTCP(t, "gitserver", port, c.gitServer)
}

func (c *cluster) repoURL() string { return "http://" + c.gitAddr + "/shop-environments.git" }

// startArgoCD starts Argo CD's four components, once its CRDs and config are in.
func (c *cluster) startArgoCD(t *testing.T) {
	t0 := time.Now()
	redis := c.redisAddr
	repoPort := freePort(t)
	repo := fmt.Sprintf("127.0.0.1:%d", repoPort)
	c.components["argocd-repo-server"] = start(t, c.logs, "argocd-repo-server", c.env, filepath.Join(c.bin, "argocd-repo-server"),
		"--port", fmt.Sprint(repoPort), "--metrics-port", fmt.Sprint(freePort(t)), "--redis", redis, "--disable-tls",
		"--loglevel", "info")
	waitTCP(t, "argocd-repo-server", repoPort, c.components["argocd-repo-server"])
	c.appsetHook = freePort(t)
	c.components["argocd-application-controller"] = start(t, c.logs, "argocd-application-controller", c.env,
		filepath.Join(c.bin, "argocd-application-controller"),
		"--redis", redis, "--repo-server", repo, "--repo-server-plaintext", "--metrics-port", fmt.Sprint(freePort(t)))
	c.components["argocd-applicationset-controller"] = start(t, c.logs, "argocd-applicationset-controller", c.env,
		filepath.Join(c.bin, "argocd-applicationset-controller"),
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--probe-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--webhook-addr", fmt.Sprintf("127.0.0.1:%d", c.appsetHook), "--argocd-repo-server", repo, "--repo-server-plaintext")
	c.argoPort = freePort(t)
	srv := start(t, c.logs, "argocd-server", c.env, filepath.Join(c.bin, "argocd-server"),
		"--redis", redis, "--repo-server", repo, "--repo-server-plaintext", "--insecure",
		"--port", fmt.Sprint(c.argoPort), "--metrics-port", fmt.Sprint(freePort(t)))
	c.components["argocd-server"] = srv
	waitFor(t, "argocd-server /healthz", 90*time.Second, func() error {
		if srv.exited() {
			t.Fatalf("argocd-server exited: see %s", srv.log.Name())
		}
		r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", c.argoPort))
		if err != nil {
			return err
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			return fmt.Errorf("healthz: %s", r.Status)
		}
		return nil
	})
	fmt.Printf("e2e: Argo CD up in %s\n", time.Since(t0).Round(10*time.Millisecond))
}

// kubectl runs the e2e binary's kubectl against the cluster.
func (c *cluster) kubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.kubectlErr(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (c *cluster) kubectlErr(args ...string) (string, error) {
	return c.kubectlIn(nil, args...)
}

func (c *cluster) kubectlIn(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(c.bin, "kubectl"), append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%v: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// getJSON reads one object (nil when it does not exist).
func (c *cluster) getJSON(t testing.TB, args ...string) map[string]any {
	t.Helper()
	out, err := c.kubectlErr(append([]string{"get", "-o", "json"}, args...)...)
	if err != nil {
		if strings.Contains(err.Error(), "NotFound") || strings.Contains(err.Error(), "not found") {
			return nil
		}
		t.Fatalf("kubectl get %v: %v", args, err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// offshootCmd runs the offshoot CLI against the environments repo.
func (c *cluster) offshootCmd(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.offshoot, append([]string{"--env-repo", c.repoURL(), "--cache-dir", filepath.Join(c.dir, "offshoot-cache")}, args...)...)
	cmd.Env = append(os.Environ(), "OFFSHOOT_AUTHOR_NAME=e2e", "OFFSHOOT_AUTHOR_EMAIL=e2e@offshoot.dev")
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (c *cluster) offshootT(t testing.TB, args ...string) string {
	t.Helper()
	return c.offshootEnvT(t, nil, args...)
}

func (c *cluster) offshootEnvT(t testing.TB, env []string, args ...string) string {
	t.Helper()
	out, err := c.offshootCmd(context.Background(), env, args...)
	if err != nil {
		t.Fatalf("offshoot %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// argoEnv is how a user tells offshoot to notify Argo CD after each commit
// (README, "Seconds, not minutes"): the ApplicationSet controller's webhook
// with argocd-secret's webhook.github.secret, and the API server with the
// offshoot account's API key.
func (c *cluster) argoEnv() []string {
	return []string{
		fmt.Sprintf("ARGOCD_APPSET_WEBHOOK=http://127.0.0.1:%d/api/webhook", c.appsetHook),
		"ARGOCD_WEBHOOK_SECRET=" + c.hookSecret,
		fmt.Sprintf("ARGOCD_SERVER=http://127.0.0.1:%d", c.argoPort),
		"ARGOCD_AUTH_TOKEN=" + c.argoToken,
	}
}

// hooksEnv tells Argo CD through its two webhooks only — the ApplicationSet
// controller's and the API server's — with no API token: what the in-cluster
// serve (the server build) does.
func (c *cluster) hooksEnv() []string {
	return []string{
		fmt.Sprintf("ARGOCD_APPSET_WEBHOOK=http://127.0.0.1:%d/api/webhook", c.appsetHook),
		fmt.Sprintf("ARGOCD_WEBHOOK=http://127.0.0.1:%d/api/webhook", c.argoPort),
		"ARGOCD_WEBHOOK_SECRET=" + c.hookSecret,
		"ARGOCD_SERVER=", "ARGOCD_AUTH_TOKEN=",
	}
}

// field digs into decoded JSON: field(m, "spec", "template", 0, "name").
func field(m any, path ...any) any {
	cur := m
	for _, p := range path {
		switch k := p.(type) {
		case string:
			mm, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = mm[k]
		case int:
			s, ok := cur.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			cur = s[k]
		}
	}
	return cur
}

func str(m any, path ...any) string {
	s, _ := field(m, path...).(string)
	return s
}
