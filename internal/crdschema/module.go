package crdschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// ErrGoNotFound is returned (wrapped) by ModuleDir when no `go` command is
// available. It is the only condition under which the convenience loaders
// skip a test instead of failing it.
var ErrGoNotFound = errors.New("crdschema: the go command is not available")

type moduleDirResult struct {
	dir string
	err error
}

var (
	moduleDirMu    sync.Mutex
	moduleDirCache = map[string]*moduleDirResult{}
)

// ModuleDir returns the extracted module directory of module@version, running
// `go mod download -json module@version` (works offline once cached; exact
// versions are served by the module proxy).
//
// The command runs in a throwaway directory holding its own go.mod (with
// GOFLAGS=-mod=mod and GOWORK=off), so the go.mod of the calling module is
// never read or edited. Results are memoised per module@version for the life
// of the process.
func ModuleDir(module, version string) (string, error) {
	if module == "" || version == "" {
		return "", fmt.Errorf("crdschema: ModuleDir needs a module path and an exact version, got %q@%q", module, version)
	}
	key := module + "@" + version

	moduleDirMu.Lock()
	r, ok := moduleDirCache[key]
	if !ok {
		r = &moduleDirResult{}
		r.dir, r.err = downloadModule(module, version)
		// Do not memoise a missing go command or a transient failure forever;
		// only successes are cached.
		if r.err == nil {
			moduleDirCache[key] = r
		}
	}
	moduleDirMu.Unlock()
	return r.dir, r.err
}

func downloadModule(module, version string) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrGoNotFound, err)
	}

	tmp, err := os.MkdirTemp("", "crdschema-download-")
	if err != nil {
		return "", fmt.Errorf("crdschema: %v", err)
	}
	defer os.RemoveAll(tmp)
	// A go.mod of our own stops the go command from walking up into whatever
	// module happens to contain the temp directory.
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte("module crdschema.invalid/download\n"), 0o644); err != nil {
		return "", fmt.Errorf("crdschema: %v", err)
	}

	cmd := exec.Command(goCmd, "mod", "download", "-json", module+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()

	var info struct {
		Path    string
		Version string
		Error   string
		Dir     string
	}
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
		return "", fmt.Errorf("crdschema: go mod download %s@%s: %v (decoding output: %v; stderr: %s)",
			module, version, runErr, err, strings.TrimSpace(stderr.String()))
	}
	if info.Error != "" {
		return "", fmt.Errorf("crdschema: go mod download %s@%s: %s", module, version, info.Error)
	}
	if runErr != nil {
		return "", fmt.Errorf("crdschema: go mod download %s@%s: %v: %s", module, version, runErr, strings.TrimSpace(stderr.String()))
	}
	if info.Dir == "" {
		return "", fmt.Errorf("crdschema: go mod download %s@%s reported no module directory", module, version)
	}
	if fi, err := os.Stat(info.Dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("crdschema: module directory %s of %s@%s is missing: %v", info.Dir, module, version, err)
	}
	return info.Dir, nil
}
