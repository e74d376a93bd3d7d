package e2e

// The real node: etcd, kube-apiserver (on the node address, with a CA the
// pods trust), kube-controller-manager, kube-scheduler, containerd, the
// kubelet and kube-proxy, every binary from bin/e2ecluster but containerd,
// runc and the CNI plugins (Debian packages). Images come from e2eprep's
// cache and are imported with `ctr images import` (no registry).

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// prepOut is what tools/cmd/e2eprep wrote (E2E_IMAGES).
type prepOut struct {
	Cache    string `json:"cache"`
	PGImage  string `json:"pgImage"`
	AppImage string `json:"appImage"`
	Images   []struct {
		Ref string `json:"ref"`
		Tar string `json:"tar"`
	} `json:"images"`
}

type node struct {
	*cluster
	host    *hostState
	prep    prepOut
	ca      *certKey
	ctrSock string
	s3      *proc
	s3Addr  string
	s3Audit string
	pvDir   string
	timings []string

	syncedAt                  time.Time // when the last offshoot sync returned
	childTimes                []time.Duration
	rowsSeen, sizes, failures []string
	auditLines                []string
	statusOut                 string
}

func (n *node) mark(what string, d time.Duration) {
	line := fmt.Sprintf("%-70s %8.1fs", what, d.Seconds())
	n.timings = append(n.timings, line)
	fmt.Println("e2e-node: " + line)
}

func (n *node) ctr(args ...string) (string, error) {
	return sh("ctr", append([]string{"-a", n.ctrSock, "-n", "k8s.io"}, args...)...)
}

// startNode brings up the control plane and the node, imports the images and
// waits for the Node to be Ready.
func startNode(t *testing.T) *node {
	t0 := time.Now()
	binDir := abs(t, mustEnv(t, "E2E_BIN_DIR", "bin"))
	c := &cluster{
		e2ecluster: filepath.Join(binDir, "e2ecluster"),
		offshoot:   filepath.Join(binDir, "offshoot"),
		gitserverB: filepath.Join(binDir, "gitserver"),
		components: map[string]*proc{},
	}
	n := &node{cluster: c}
	for _, b := range []string{c.e2ecluster, c.offshoot, c.gitserverB, filepath.Join(binDir, "kustomize"), filepath.Join(binDir, "e2es3")} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%v: run `make e2e-node` from the repository root, which builds it", err)
		}
	}
	imgs := os.Getenv("E2E_IMAGES")
	if imgs == "" {
		t.Fatal("E2E_IMAGES is not set: run `make e2e-node`, which runs tools/cmd/e2eprep")
	}
	b, err := os.ReadFile(imgs)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &n.prep); err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("E2E_WORKDIR")
	if dir == "" {
		if dir, err = os.MkdirTemp("", "offshoot-e2e-node-"); err != nil {
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
	fmt.Printf("e2e-node: logs of every component in %s\n", c.logs)
	t.Cleanup(func() { fmt.Printf("e2e-node: logs of every component in %s\n", c.logs) })
	t.Cleanup(runTeardowns)
	for _, role := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl",
		"argocd-server", "argocd-application-controller", "argocd-repo-server", "argocd-applicationset-controller", "argocd", "argocd-git-ask-pass"} {
		if err := os.Symlink(c.e2ecluster, filepath.Join(c.bin, role)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(binDir, "kustomize"), filepath.Join(c.bin, "kustomize")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}

	n.host = prepareHost(t, c.dir)
	addTeardown(n.stop) // runs before host.restore (newest first)

	// PKI: one CA for the API server (pods verify it) and the node.
	pki := filepath.Join(c.dir, "pki")
	n.ca = newCA(t, "offshoot-e2e-ca")
	api := n.ca.leaf(t, "kube-apiserver",
		[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
		[]string{"10.96.0.1", nodeIP, "127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	writeFile(t, filepath.Join(pki, "ca.crt"), string(n.ca.certPEM))
	writeFile(t, filepath.Join(pki, "apiserver.crt"), string(api.certPEM))
	writeFile(t, filepath.Join(pki, "apiserver.key"), string(api.keyPEM))
	sa := n.ca.leaf(t, "service-accounts", nil, nil)
	writeFile(t, filepath.Join(pki, "sa.key"), string(sa.keyPEM))
	writeFile(t, filepath.Join(pki, "sa.crt"), string(sa.certPEM))
	c.token = randHex(24)
	nodeTok, proxyTok := randHex(24), randHex(24)
	writeFile(t, filepath.Join(pki, "tokens.csv"), c.token+",admin,admin-uid,system:masters\n"+
		nodeTok+",system:node:"+nodeName+",node-uid,system:nodes\n"+proxyTok+",system:kube-proxy,proxy-uid,system:node-proxier\n")
	kubeconfig := func(name, tok string) string {
		p := filepath.Join(c.dir, name+".kubeconfig")
		writeFile(t, p, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: "https://%s:6443", certificate-authority: %s}
users:
- name: u
  user: {token: "%s"}
contexts:
- name: e2e
  context: {cluster: e2e, user: u, namespace: argocd}
current-context: e2e
`, nodeIP, filepath.Join(pki, "ca.crt"), tok))
		return p
	}
	c.kubeconfig = kubeconfig("admin", c.token)
	kubeletKC, proxyKC := kubeconfig("kubelet", nodeTok), kubeconfig("kube-proxy", proxyTok)

	// containerd first: the images import while the control plane starts.
	n.ctrSock = filepath.Join(c.dir, "run", "containerd", "containerd.sock")
	writeFile(t, filepath.Join(c.dir, "etc", "containerd.toml"), containerdConfig(c.dir))
	writeFile(t, filepath.Join(c.dir, "etc", "cni", "net.d", "10-e2e.conflist"), cniConfig(c.dir))
	writeFile(t, filepath.Join(c.dir, "etc", "resolv.conf"), "nameserver 127.0.0.1\n") // no DNS: fails fast, sends nothing out
	c.components["containerd"] = start(t, c.logs, "containerd", nil, "containerd", "--config", filepath.Join(c.dir, "etc", "containerd.toml"))
	imported := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := n.ctr("version"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				imported <- fmt.Errorf("containerd not answering on %s", n.ctrSock)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		ti := time.Now()
		for _, img := range n.prep.Images {
			if out, err := n.ctr("images", "import", img.Tar); err != nil {
				imported <- fmt.Errorf("import %s: %v %s", img.Ref, err, out)
				return
			}
		}
		n.mark(fmt.Sprintf("%d images imported (ctr images import)", len(n.prep.Images)), time.Since(ti))
		imported <- nil
	}()

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
	redisPort := freePort(t)
	c.components["redis"] = start(t, c.logs, "redis", nil, "redis-server",
		"--bind", "127.0.0.1", "--port", fmt.Sprint(redisPort), "--save", "", "--appendonly", "no",
		"--dir", c.dir, "--protected-mode", "yes")
	c.redisAddr = fmt.Sprintf("127.0.0.1:%d", redisPort)
	waitTCP(t, "etcd", etcdClient, etcd)

	c.apiPort = 6443
	apiserver := start(t, c.logs, "kube-apiserver", nil, filepath.Join(c.bin, "kube-apiserver"),
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdClient),
		"--bind-address="+nodeIP, "--advertise-address="+nodeIP, "--secure-port=6443",
		"--tls-cert-file="+filepath.Join(pki, "apiserver.crt"), "--tls-private-key-file="+filepath.Join(pki, "apiserver.key"),
		"--client-ca-file="+filepath.Join(pki, "ca.crt"),
		"--token-auth-file="+filepath.Join(pki, "tokens.csv"), "--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(pki, "sa.key"),
		"--service-account-signing-key-file="+filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range="+serviceCIDR, "--allow-privileged=true",
		"--kubelet-preferred-address-types=InternalIP", "--enable-priority-and-fairness=false", "--profiling=false")
	c.components["kube-apiserver"] = apiserver
	waitFor(t, "kube-apiserver /readyz", 120*time.Second, func() error {
		if apiserver.exited() {
			t.Fatalf("kube-apiserver exited: see %s", apiserver.log.Name())
		}
		_, err := c.kubectlErr("get", "--raw", "/readyz")
		return err
	})
	n.mark("kube-apiserver ready", time.Since(t0))
	c.components["kube-controller-manager"] = start(t, c.logs, "kube-controller-manager", nil, filepath.Join(c.bin, "kube-controller-manager"),
		"--kubeconfig="+c.kubeconfig, "--authentication-kubeconfig="+c.kubeconfig, "--authorization-kubeconfig="+c.kubeconfig,
		"--leader-elect=false", "--service-account-private-key-file="+filepath.Join(pki, "sa.key"),
		"--root-ca-file="+filepath.Join(pki, "ca.crt"), "--controllers=*", "--use-service-account-credentials=false",
		"--pvclaimbinder-sync-period=2s", "--flex-volume-plugin-dir="+filepath.Join(c.dir, "var", "lib", "kubelet", "volume-plugins"),
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", freePort(t)), "--profiling=false")
	c.components["kube-scheduler"] = start(t, c.logs, "kube-scheduler", nil, filepath.Join(c.bin, "kube-scheduler"),
		"--kubeconfig="+c.kubeconfig, "--authentication-kubeconfig="+c.kubeconfig, "--authorization-kubeconfig="+c.kubeconfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", freePort(t)), "--profiling=false")

	if err := <-imported; err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c.dir, "etc", "kubelet.yaml"), kubeletConfig(c.dir, n.ctrSock))
	writeFile(t, filepath.Join(c.dir, "etc", "kube-proxy.yaml"), kubeProxyConfig(proxyKC, freePort(t), freePort(t)))
	c.components["kubelet"] = start(t, c.logs, "kubelet", nil, filepath.Join(c.bin, "kubelet"),
		"--config="+filepath.Join(c.dir, "etc", "kubelet.yaml"), "--kubeconfig="+kubeletKC,
		"--root-dir="+filepath.Join(c.dir, "var", "lib", "kubelet"), "--cert-dir="+filepath.Join(c.dir, "var", "lib", "kubelet", "pki"),
		"--hostname-override="+nodeName, "--node-ip="+nodeIP)
	c.components["kube-proxy"] = start(t, c.logs, "kube-proxy", nil, filepath.Join(c.bin, "kube-proxy"),
		"--config="+filepath.Join(c.dir, "etc", "kube-proxy.yaml"))
	waitFor(t, "Node "+nodeName+" Ready", 180*time.Second, func() error {
		if c.components["kubelet"].exited() {
			t.Fatalf("kubelet exited: see %s", c.components["kubelet"].log.Name())
		}
		out, err := c.kubectlErr("get", "node", nodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return err
		}
		if out != "True" {
			return fmt.Errorf("Ready=%q", out)
		}
		return nil
	})
	// kube-proxy has programmed the kubernetes Service (pods reach the API
	// server through it).
	waitFor(t, "kube-proxy rules for the kubernetes Service", 60*time.Second, func() error {
		if p := c.components["kube-proxy"]; p.exited() {
			t.Fatalf("kube-proxy exited: see %s", p.log.Name())
		}
		out, err := sh("iptables", "-t", "nat", "-S")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "default/kubernetes:https") {
			return fmt.Errorf("no rule for default/kubernetes yet")
		}
		return nil
	})
	waitFor(t, "default ServiceAccount", 60*time.Second, func() error {
		_, err := c.kubectlErr("get", "serviceaccount", "default", "-n", "default")
		return err
	})
	n.mark("Node Ready (from nothing, incl. image import)", time.Since(t0))

	// The environments repo's git server, Argo CD's environment.
	c.gitRoot = filepath.Join(c.dir, "git")
	c.gitAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.startGit(t, true)
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
		"ARGOCD_BINARY_NAME=",
	}
	c.startupTime = time.Since(t0)
	return n
}

// stop deletes the workloads while the kubelet still runs (so CNI DEL
// runs for every pod), stops every process, then removes what containerd
// left. The host is restored after it (hostState.restore).
func (n *node) stop() {
	c := n.cluster
	alive := func(name string) bool { p := c.components[name]; return p != nil && !p.exited() }
	if alive("kube-apiserver") && alive("kubelet") {
		for _, p := range []string{"argocd-application-controller", "argocd-applicationset-controller"} {
			if pr := c.components[p]; pr != nil {
				pr.stop()
			}
		}
		_, _ = c.kubectlErr("--request-timeout=20s", "-n", "cnpg-system", "scale", "deploy", "--all", "--replicas=0")
		_, _ = c.kubectlErr("--request-timeout=20s", "delete", "clusters.postgresql.cnpg.io", "--all", "-A", "--wait=false")
		_, _ = c.kubectlErr("--request-timeout=20s", "delete", "jobs", "--all", "-A", "--wait=false")
		_, _ = c.kubectlErr("--request-timeout=100s", "delete", "pods", "--all", "-A", "--wait=true", "--timeout=90s", "--grace-period=5")
	}
	for _, name := range []string{"kube-proxy", "kubelet"} {
		if p := c.components[name]; p != nil {
			p.stop()
		}
	}
	if alive("containerd") {
		if out, err := n.ctr("tasks", "ls", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				_, _ = n.ctr("tasks", "kill", "-s", "KILL", id)
			}
			time.Sleep(time.Second)
			for _, id := range strings.Fields(out) {
				_, _ = n.ctr("tasks", "rm", "-f", id)
			}
		}
		if out, err := n.ctr("containers", "ls", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				_, _ = n.ctr("containers", "rm", id)
			}
		}
	}
	stopAll()
	// Shims of our containerd (they run in their own sessions): by PID,
	// matched on our socket's path.
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.HasPrefix(cmd, "/usr/bin/containerd-shim") && strings.Contains(cmd, n.ctrSock) {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			if pid > 0 {
				_ = exec.Command("kill", "-KILL", fmt.Sprint(pid)).Run()
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
}

func containerdConfig(dir string) string {
	return fmt.Sprintf(`version = 2
root = "%[1]s/var/lib/containerd"
state = "%[1]s/run/containerd"
oom_score = 0
[grpc]
  address = "%[1]s/run/containerd/containerd.sock"
[ttrpc]
  address = ""
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "%[1]s/var/lib/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  # No CAP_SYS_RESOURCE here: runc cannot lower oom_score_adj for the
  # sandbox ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "%[1]s/run/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "%[1]s/etc/cni/net.d"
    max_conf_num = 1
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = "%[1]s/run/runc-v1"
`, dir)
}

func cniConfig(dir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "offshoot-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "%s", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "%s/var/lib/cni/networks",
              "ranges": [[{"subnet": "%s", "gateway": "10.244.0.1"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, cniBridge, dir, podSubnet)
}

func kubeletConfig(dir, sock string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[2]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://%[3]s
cgroupDriver: cgroupfs
cgroupRoot: /%[4]s
cgroupsPerQOS: true
enforceNodeAllocatable: ["pods"]
failSwapOn: false
failCgroupV1: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {nodefs.available: "0%%", nodefs.inodesFree: "0%%", imagefs.available: "0%%"}
podLogsDir: %[1]s/var/log/pods
volumePluginDir: %[1]s/var/lib/kubelet/volume-plugins
resolvConf: %[1]s/etc/resolv.conf
clusterDomain: cluster.local
makeIPTablesUtilChains: false
protectKernelDefaults: false
rotateCertificates: false
serializeImagePulls: false
maxPods: 60
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusReportFrequency: 10s
`, dir, nodeIP, sock, cgroupRoot)
}

func kubeProxyConfig(kubeconfig string, healthz, metrics int) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %s}
hostnameOverride: %s
mode: iptables
clusterCIDR: %s
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
nodePortAddresses: ["%s/32"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  masqueradeAll: false
  syncPeriod: 10s
  minSyncPeriod: 1s
`, kubeconfig, nodeName, podCIDR, healthz, metrics, nodeIP)
}
