package e2e

// The host side of the real node (TestNode): what the kubelet, containerd,
// CNI and kube-proxy need from this machine, saved first and restored on
// every way out (see ../shared POC's traps, re-done here in Go):
//
//   - an empty bridge holds the node / API server address (the kernel here
//     has no "dummy" links); the Service range is routed into it, so unused
//     ClusterIPs die there instead of leaving through the default route;
//   - an egress guard: pod traffic may go to pods, the node and Services,
//     never out of this machine;
//   - / made shared (mount propagation), ip_forward and bridge-nf-call on;
//   - the sysctls the kubelet changes VM-wide are restored;
//   - a cgroup root of our own in each v1 hierarchy (cgroupfs driver);
//   - what the kubelet and containerd write at hard-coded paths outside the
//     work dir is removed (only what we created).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const (
	nodeIP      = "10.245.0.1"
	nodeName    = "e2e-node"
	nodeBridge  = "e2enode0" // holds nodeIP
	cniBridge   = "e2ecni0"  // the pods' bridge
	podCIDR     = "10.244.0.0/16"
	podSubnet   = "10.244.0.0/24"
	serviceCIDR = "10.96.0.0/16"
	cgroupRoot  = "offshoot-e2e"
	egressTag   = "offshoot-e2e-no-egress"
)

var savedSysctls = []string{
	"net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "vm.overcommit_memory", "vm.panic_on_oom",
	"kernel.panic", "kernel.panic_on_oops", "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes",
}

// hardPaths are created by the kubelet, containerd or CNI outside the work
// dir; the teardown removes the ones that did not exist before.
var hardPaths = []string{
	"/var/lib/kubelet/device-plugins", "/var/lib/kubelet", "/var/log/containers", "/var/lib/cni/results",
	"/var/lib/cni", "/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc/k8s.io",
	"/run/containerd/runc", "/run/containerd", "/opt/cni/bin", "/opt/cni", "/etc/cni/net.d", "/etc/cni",
}

type hostState struct {
	dir         string
	sysctls     map[string]string
	propagation string
	existed     map[string]bool
	nftTables   map[string]bool // nft tables before (iptables-nft creates empty ones)
	cniResults  map[string]bool // files in /var/lib/cni/results before
	once        sync.Once
}

func sh(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func mustSh(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := sh(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// prepareHost saves what it changes, then sets up the node's network.
func prepareHost(t *testing.T, dir string) *hostState {
	if _, err := sh("ip", "link", "show", nodeBridge); err == nil {
		t.Fatalf("%s exists: another node e2e runs on this machine (or one was killed: make e2e-down)", nodeBridge)
	}
	for _, b := range []string{"containerd", "runc", "ctr", "iptables", "conntrack", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s not found: apt-get install -y containerd runc containernetworking-plugins iptables conntrack", b)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Fatal("/usr/lib/cni/bridge not found: apt-get install -y containernetworking-plugins")
	}
	h := &hostState{dir: dir, sysctls: map[string]string{}, existed: map[string]bool{}, nftTables: nftTables(), cniResults: dirNames("/var/lib/cni/results")}
	if _, err := os.Stat("/proc/sys/net/bridge"); err != nil {
		_, _ = sh("modprobe", "br_netfilter")
	}
	for _, k := range savedSysctls {
		if v, err := sh("sysctl", "-n", k); err == nil {
			h.sysctls[k] = strings.TrimSpace(v)
		}
	}
	h.propagation = strings.TrimSpace(mustSh(t, "findmnt", "-no", "PROPAGATION", "/"))
	for _, p := range hardPaths {
		if _, err := os.Lstat(p); err == nil {
			h.existed[p] = true
		}
	}
	addTeardown(h.restore)
	mustSh(t, "mount", "--make-shared", "/")
	mustSh(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	mustSh(t, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
	mustSh(t, "ip", "link", "add", nodeBridge, "type", "bridge")
	mustSh(t, "ip", "addr", "add", nodeIP+"/32", "dev", nodeBridge)
	_, _ = sh("sysctl", "-qw", "net.ipv6.conf."+nodeBridge+".disable_ipv6=1")
	mustSh(t, "ip", "link", "set", nodeBridge, "up")
	mustSh(t, "ip", "route", "replace", serviceCIDR, "dev", nodeBridge)
	mustSh(t, "iptables", "-I", "FORWARD", "1", "-s", podCIDR, "!", "-o", cniBridge, "-m", "comment", "--comment", egressTag, "-j", "DROP")
	for _, d := range cgroupDirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuset", f))
		if err == nil {
			_ = os.WriteFile(filepath.Join("/sys/fs/cgroup/cpuset", cgroupRoot, f), b, 0o644)
		}
	}
	return h
}

// cgroupDirs is our cgroup root in each v1 hierarchy (or the v2 tree).
func cgroupDirs() []string {
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	var ds []string
	v1 := false
	for _, e := range ents {
		if e.IsDir() && e.Name() != "unified" {
			v1 = true
			ds = append(ds, filepath.Join("/sys/fs/cgroup", e.Name(), cgroupRoot))
		}
	}
	if !v1 {
		ds = []string{filepath.Join("/sys/fs/cgroup", cgroupRoot)}
	}
	return ds
}

// restore undoes prepareHost and what the node left behind. Idempotent.
func (h *hostState) restore() {
	h.once.Do(func() {
		dir := h.dir
		// Mounts under the work dir (overlay rootfs, tmpfs volumes, netns), deepest first.
		if out, err := sh("findmnt", "-rn", "-o", "TARGET"); err == nil {
			var ms []string
			for _, m := range strings.Split(out, "\n") {
				if strings.HasPrefix(m, dir+"/") {
					ms = append(ms, m)
				}
			}
			for i := len(ms) - 1; i >= 0; i-- {
				if _, err := sh("umount", ms[i]); err != nil {
					_, _ = sh("umount", "-l", ms[i])
				}
			}
		}
		// iptables: every KUBE-* / CNI-* chain and rule, and our guard; nothing else.
		for _, save := range []string{"iptables", "ip6tables"} {
			out, err := sh(save + "-save")
			if err != nil {
				continue
			}
			var keep []string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, ":KUBE-") || strings.HasPrefix(l, ":CNI-") ||
					(!strings.HasPrefix(l, ":") && (strings.Contains(l, "KUBE-") || strings.Contains(l, "CNI-") || strings.Contains(l, egressTag))) {
					continue
				}
				keep = append(keep, l)
			}
			c := exec.Command(save + "-restore")
			c.Stdin = strings.NewReader(strings.Join(keep, "\n"))
			if out, err := c.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: %s-restore: %v %s\n", save, err, out)
			}
		}
		// veths on the pods' bridge, the bridges.
		if out, err := sh("ip", "-o", "link", "show", "master", cniBridge); err == nil {
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) > 1 {
					_, _ = sh("ip", "link", "del", strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
				}
			}
		}
		// nft tables that iptables-nft created for us and that are empty now.
		for tb := range nftTables() {
			if h.nftTables[tb] {
				continue
			}
			f := strings.Fields(tb)
			if out, err := sh("nft", "list", "table", f[0], f[1]); err == nil && !nftHasRules(out) {
				_, _ = sh("nft", "delete", "table", f[0], f[1])
			}
		}
		_, _ = sh("ip", "link", "del", cniBridge)
		_, _ = sh("ip", "link", "del", nodeBridge) // also drops the Service route
		for k, v := range h.sysctls {
			_, _ = sh("sysctl", "-qw", k+"="+v)
		}
		if h.propagation == "private" {
			_, _ = sh("mount", "--make-private", "/")
		}
		for _, d := range append(cgroupDirs(), filepath.Join("/sys/fs/cgroup/unified", cgroupRoot)) {
			removeCgroupTree(d)
		}
		// The bulky state (images, volumes, etcd); the logs stay.
		for _, d := range []string{"var/lib/containerd", "var/lib/kubelet", "run", "pv", "etcd"} {
			os.RemoveAll(filepath.Join(dir, d))
		}
		// What the kubelet / containerd wrote at hard-coded paths.
		if ents, err := os.ReadDir("/var/log/containers"); err == nil {
			for _, e := range ents {
				p := filepath.Join("/var/log/containers", e.Name())
				if dst, err := os.Readlink(p); err == nil && strings.HasPrefix(dst, dir+"/") {
					os.Remove(p)
				}
			}
		}
		os.Remove("/var/lib/kubelet/device-plugins/kubelet.sock")
		for f := range dirNames("/var/lib/cni/results") { // libcni's cache of our pods
			if !h.cniResults[f] {
				os.Remove(filepath.Join("/var/lib/cni/results", f))
			}
		}
		for _, p := range hardPaths {
			if !h.existed[p] {
				os.Remove(p) // only when empty
			}
		}
	})
}

func removeCgroupTree(d string) {
	ents, err := os.ReadDir(d)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(d, e.Name()))
		}
	}
	if err := os.Remove(d); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cgroup left: %s: %v\n", d, err)
	}
}

// nftTables lists the nft tables ("family name").
func nftTables() map[string]bool {
	m := map[string]bool{}
	out, err := sh("nft", "list", "tables")
	if err != nil {
		return m
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "table" {
			m[f[1]+" "+f[2]] = true
		}
	}
	return m
}

// nftHasRules reports whether a listed table holds any rule (not only
// chains with their hooks and policies).
func nftHasRules(listing string) bool {
	for _, l := range strings.Split(listing, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == "}" || strings.HasPrefix(l, "table ") || strings.HasPrefix(l, "chain ") || strings.HasPrefix(l, "type ") {
			continue
		}
		return true
	}
	return false
}

func dirNames(dir string) map[string]bool {
	m := map[string]bool{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		m[e.Name()] = true
	}
	return m
}
