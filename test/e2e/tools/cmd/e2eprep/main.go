// Command e2eprep builds what the real-node e2e (TestNode) runs and keeps it
// in a cache outside the checkout, each entry keyed by a hash of its inputs
// (${OFFSHOOT_E2E_CACHE:-$HOME/.cache/offshoot-e2e}/<name>-<hash>): a fresh
// clone on this machine reuses it, a cold machine builds it.
//
//   - rootfs-pg: Debian trixie minbase by debootstrap + postgresql-17,
//     barman-cli-cloud, python3-boto3 (postgres is uid/gid 26, created before
//     PostgreSQL is installed; trixie's "tape" group moves off gid 26);
//   - the CloudNativePG operator v1.30.0 and the Barman Cloud plugin v0.14.0,
//     each built in its own module directory (its own go.mod: neither can
//     share a module graph with Argo CD v2);
//   - the e2e's app and pause programs (test/e2e/cmd/e2eapp, e2epause);
//   - docker-archive tarballs of every image under its upstream name, packed
//     with go-containerregistry (no registry, no Docker).
//
// It writes a JSON description of the images for the test (-out).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

const (
	suite   = "trixie"
	mirror  = "http://deb.debian.org/debian"
	cnpgMod = "github.com/cloudnative-pg/cloudnative-pg@v1.30.0"
	// v0.15.0 cannot be built from the module proxy (its dependencies
	// barman-cloud v0.6.0 and machinery v0.6.0 are refused); v0.14.0's CRD
	// matches v0.15's.
	pluginMod = "github.com/cloudnative-pg/plugin-barman-cloud@v0.14.0"

	CNPGImage    = "ghcr.io/cloudnative-pg/cloudnative-pg:1.30.0"
	PluginImage  = "ghcr.io/cloudnative-pg/plugin-barman-cloud:v0.14.0"
	SidecarImage = "ghcr.io/cloudnative-pg/plugin-barman-cloud-sidecar:v0.14.0"
	PauseImage   = "registry.k8s.io/pause:3.10"
	AppImage     = "ghcr.io/acme/shop:e2e"
	pgPath       = "PATH=/usr/lib/postgresql/17/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// rootfsScript runs in the chroot after debootstrap.
const rootfsScript = `set -eux
g=$(getent group 26 | cut -d: -f1 || true)
if [ -n "$g" ] && [ "$g" != postgres ]; then groupmod -g 994 "$g"; fi
getent group postgres || groupadd -r -g 26 postgres
getent passwd postgres || useradd -r -u 26 -g 26 -d /var/lib/postgresql -s /bin/bash -c "PostgreSQL administrator" postgres
mkdir -p /var/lib/postgresql && chown 26:26 /var/lib/postgresql
mkdir -p /etc/postgresql-common
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y postgresql-17 barman-cli-cloud python3-boto3
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log
mkdir -p /var/run/postgresql && chown 26:26 /var/run/postgresql && chmod 2775 /var/run/postgresql
test "$(id -u postgres):$(id -g postgres)" = 26:26
/usr/lib/postgresql/17/bin/postgres --version | awk '{print $3}' > /.e2e-pg-version
`

// Image is one tarball for `ctr images import`.
type Image struct {
	Ref string `json:"ref"`
	Tar string `json:"tar"`
}

// Out is what the test reads.
type Out struct {
	Cache     string  `json:"cache"`
	PGImage   string  `json:"pgImage"`
	AppImage  string  `json:"appImage"`
	Images    []Image `json:"images"`
	GoVersion string  `json:"goVersion"`
}

var cache string

func main() {
	def := os.Getenv("OFFSHOOT_E2E_CACHE")
	if def == "" {
		home, _ := os.UserHomeDir()
		def = filepath.Join(home, ".cache", "offshoot-e2e")
	}
	flag.StringVar(&cache, "cache", def, "cache directory")
	e2eDir := flag.String("e2e", ".", "the test/e2e module (for cmd/e2eapp and cmd/e2epause)")
	out := flag.String("out", "", "write the images' description (JSON) here")
	only := flag.String("only", "", "comma-separated steps (rootfs,cnpg,plugin,images); default all")
	flag.Parse()
	step := func(s string) bool { return *only == "" || strings.Contains(","+*only+",", ","+s+",") }
	if err := os.MkdirAll(cache, 0o755); err != nil {
		log.Fatal(err)
	}
	t0 := time.Now()
	goVer := runtime.Version()
	if b, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		goVer = strings.TrimSpace(string(b))
	}
	rootfs := entry("rootfs-pg", suite, mirror, rootfsScript)
	if step("rootfs") {
		ensure(rootfs, buildRootfs)
	}
	cnpg := entry("cnpg-manager", cnpgMod, "./cmd/manager", goVer)
	plugin := entry("barman-cloud-manager", pluginMod, "./cmd/manager", goVer)
	if step("cnpg") {
		ensure(cnpg, func(dir string) error {
			v := "github.com/cloudnative-pg/cloudnative-pg/pkg/versions"
			return goBuild(dir, cnpgMod, "./cmd/manager", "-s -w -X "+v+".buildVersion=1.30.0 -X "+v+".buildCommit=v1.30.0-e2e")
		})
	}
	if step("plugin") {
		ensure(plugin, func(dir string) error { return goBuild(dir, pluginMod, "./cmd/manager", "-s -w") })
	}
	if !step("images") {
		fmt.Printf("e2eprep: done in %s\n", time.Since(t0).Round(time.Second))
		return
	}
	// The e2e's own programs, built every time (seconds), keyed by content.
	tmp, err := os.MkdirTemp(cache, "build-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for _, p := range []string{"e2eapp", "e2epause"} {
		c := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(tmp, p), "./cmd/"+p)
		c.Dir, c.Stdout, c.Stderr = *e2eDir, os.Stdout, os.Stderr
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := c.Run(); err != nil {
			log.Fatalf("go build %s: %v", p, err)
		}
	}
	pgVer, err := os.ReadFile(filepath.Join(rootfs, ".e2e-pg-version"))
	if err != nil {
		log.Fatalf("rootfs: %v", err)
	}
	pgImage := "ghcr.io/cloudnative-pg/postgresql:" + strings.TrimSpace(string(pgVer))
	o := Out{Cache: cache, PGImage: pgImage, AppImage: AppImage, GoVersion: goVer}
	// img packs the directory that layout fills (or returns instead).
	img := func(name, ref string, cfg imageConfig, layout func(dir string) (string, error), inputs ...string) {
		e := entry("img-"+name, append([]string{ref, fmt.Sprint(cfg)}, inputs...)...) + ".tar"
		if _, err := os.Stat(e); err != nil {
			t := time.Now()
			dir, err := os.MkdirTemp(cache, "rootfs-")
			if err != nil {
				log.Fatal(err)
			}
			src, err := layout(dir)
			if err != nil {
				log.Fatalf("image %s: %v", ref, err)
			}
			if err := packImage(src, ref, e, cfg); err != nil {
				log.Fatalf("pack %s: %v", ref, err)
			}
			os.RemoveAll(dir)
			fi, _ := os.Stat(e)
			fmt.Printf("e2eprep: image %s packed in %s (%d MB)\n", ref, time.Since(t).Round(time.Second), fi.Size()>>20)
		}
		o.Images = append(o.Images, Image{Ref: ref, Tar: e})
	}
	img("postgresql", pgImage, imageConfig{User: "26", Env: []string{pgPath, "LANG=C.UTF-8"}, Cmd: []string{"/bin/bash"}},
		func(string) (string, error) { return rootfs, nil }, rootfs)
	// CNPG's layout (its Dockerfile): /operator/manager_<GOARCH> and a
	// /manager symlink; the operator lists operator/manager_* to know which
	// instance managers it can inject (with /manager alone: "invalid
	// architecture: amd64").
	img("cnpg", CNPGImage, imageConfig{User: "65532:65532", Entrypoint: []string{"/manager"}}, func(dir string) (string, error) {
		if err := copyFile(filepath.Join(cnpg, "manager"), filepath.Join(dir, "operator", "manager_amd64")); err != nil {
			return "", err
		}
		return dir, os.Symlink("operator/manager_amd64", filepath.Join(dir, "manager"))
	}, cnpg)
	img("plugin", PluginImage, imageConfig{User: "65532:65532", Entrypoint: []string{"/manager"}}, func(dir string) (string, error) {
		return dir, copyFile(filepath.Join(plugin, "manager"), filepath.Join(dir, "manager"))
	}, plugin)
	pause, app := hashFile(filepath.Join(tmp, "e2epause")), hashFile(filepath.Join(tmp, "e2eapp"))
	img("pause", PauseImage, imageConfig{User: "65535", Entrypoint: []string{"/pause"}}, func(dir string) (string, error) {
		return dir, copyFile(filepath.Join(tmp, "e2epause"), filepath.Join(dir, "pause"))
	}, pause)
	img("app", AppImage, imageConfig{User: "65532:65532", Entrypoint: []string{"/app"}}, func(dir string) (string, error) {
		return dir, copyFile(filepath.Join(tmp, "e2eapp"), filepath.Join(dir, "app"))
	}, app)
	// The sidecar: the PostgreSQL rootfs (barman-cli-cloud, boto3) + the
	// plugin binary, user 26, as the plugin's containers/Dockerfile.sidecar.
	sidecarCfg := imageConfig{User: "26:26", Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}, Entrypoint: []string{"/manager"}}
	e := entry("img-sidecar", SidecarImage, fmt.Sprint(sidecarCfg), rootfs, plugin) + ".tar"
	if _, err := os.Stat(e); err != nil {
		t := time.Now()
		// Pack the rootfs with the binary added, then take it out again.
		bin := filepath.Join(rootfs, "manager")
		if err := copyFile(filepath.Join(plugin, "manager"), bin); err != nil {
			log.Fatal(err)
		}
		err := packImage(rootfs, SidecarImage, e, sidecarCfg)
		os.Remove(bin)
		if err != nil {
			log.Fatalf("pack sidecar: %v", err)
		}
		fmt.Printf("e2eprep: image %s packed in %s\n", SidecarImage, time.Since(t).Round(time.Second))
	}
	o.Images = append(o.Images, Image{Ref: SidecarImage, Tar: e})
	if *out != "" {
		b, _ := json.MarshalIndent(o, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("e2eprep: done in %s (cache %s)\n", time.Since(t0).Round(time.Second), cache)
}

// entry is the cache path of name for these inputs.
func entry(name string, inputs ...string) string {
	h := sha256.New()
	for _, in := range inputs {
		fmt.Fprintf(h, "%d:%s\n", len(in), in)
	}
	return filepath.Join(cache, name+"-"+hex.EncodeToString(h.Sum(nil))[:12])
}

// ensure builds dir with build (into dir.tmp, renamed when complete).
func ensure(dir string, build func(tmp string) error) {
	if _, err := os.Stat(dir); err == nil {
		fmt.Printf("e2eprep: cached %s\n", dir)
		return
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		log.Fatal(err)
	}
	t := time.Now()
	fmt.Printf("e2eprep: building %s\n", dir)
	if err := build(tmp); err != nil {
		log.Fatalf("%s: %v", filepath.Base(dir), err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("e2eprep: built %s in %s\n", filepath.Base(dir), time.Since(t).Round(time.Second))
}

func run(dir string, env []string, name string, args ...string) error {
	c := exec.Command(name, args...)
	c.Dir, c.Stdout, c.Stderr = dir, os.Stdout, os.Stderr
	c.Env = append(os.Environ(), env...)
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return nil
}

func buildRootfs(r string) error {
	if err := run("", nil, "nice", "-n", "10", "debootstrap", "--variant=minbase", suite, r, mirror); err != nil {
		return err
	}
	files := map[string]string{
		"etc/apt/sources.list": fmt.Sprintf("deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n", mirror, suite, mirror, suite, suite),
		"usr/sbin/policy-rc.d": "#!/bin/sh\nexit 101\n",
		"etc/dpkg/dpkg.cfg.d/01-nodoc": "path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\n" +
			"path-exclude=/usr/share/man/*\npath-exclude=/usr/share/info/*\n",
		"etc/apt/apt.conf.d/01-norecommends": "APT::Install-Recommends \"false\";\nAPT::Install-Suggests \"false\";\n",
	}
	for p, s := range files {
		if err := os.WriteFile(filepath.Join(r, p), []byte(s), 0o755); err != nil {
			return err
		}
	}
	proc := filepath.Join(r, "proc")
	if err := run("", nil, "mount", "-t", "proc", "proc", proc); err != nil {
		return err
	}
	err := run("", nil, "nice", "-n", "10", "chroot", r, "/bin/bash", "-c", rootfsScript)
	if uerr := run("", nil, "umount", proc); uerr != nil && err == nil {
		err = uerr
	}
	os.Remove(filepath.Join(r, "usr/sbin/policy-rc.d"))
	return err
}

// goBuild builds pkg (module@version/path) into dir/manager inside the
// module's own directory, with its own go.mod and go.sum. (`go install
// pkg@version` would need the proxy's version list, which it refuses for
// cloudnative-pg: "403 Forbidden".)
func goBuild(dir, mod, pkg, ldflags string) error {
	out, err := exec.Command("go", "mod", "download", "-json", mod).Output()
	if err != nil {
		return fmt.Errorf("go mod download %s: %v", mod, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return fmt.Errorf("go mod download %s: %v %s", mod, err, m.Error)
	}
	return run(m.Dir, []string{"CGO_ENABLED=0", "GOFLAGS=-modcacherw", "GOWORK=off"},
		"nice", "-n", "10", "go", "build", "-trimpath", "-ldflags="+ldflags, "-o", filepath.Join(dir, "manager"), pkg)
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func hashFile(p string) string {
	f, err := os.Open(p)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	_, _ = io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}
