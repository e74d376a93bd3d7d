// Package gitserver serves bare git repositories over smart HTTP with the
// real `git http-backend` (from the git package) on 127.0.0.1. Tests, the
// demo and the benchmarks use it as the environments repo's remote, so
// offshoot talks to a real git server exactly as it would in production.
package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Server is a running git smart-HTTP server.
type Server struct {
	Root string // directory holding the bare repositories
	URL  string // http://127.0.0.1:PORT
	// Stderr receives git http-backend's diagnostics (default: discarded;
	// a refused push is already reported to the client).
	Stderr io.Writer

	srv    *http.Server
	ln     net.Listener
	mu     sync.Mutex
	down   bool
	pushes int
	// pushAdverts counts receive-pack advertisements (GET info/refs).
	pushAdverts int
	// fetches counts upload-pack advertisements (the start of every fetch
	// or clone) by repository path ("/name.git").
	fetches map[string]int
	backend string
}

// Backend finds git-http-backend.
func Backend() (string, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return "", fmt.Errorf("git is not installed (apt-get install -y git): %w", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("git-http-backend not found at %s: %w", p, err)
	}
	return p, nil
}

// Start serves the bare repositories under root on addr ("127.0.0.1:0"
// picks a free port).
func Start(root, addr string) (*Server, error) {
	backend, err := Backend()
	if err != nil {
		return nil, err
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Root: root, URL: "http://" + ln.Addr().String(), ln: ln, backend: backend}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// ServeHTTP runs git-http-backend for each request, or answers 503 while
// the server is "down" (SetDown), to simulate an outage.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down := s.down
	if strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
		s.pushes++
	}
	if strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.Query().Get("service") == "git-receive-pack" {
		s.pushAdverts++
	}
	if strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.Query().Get("service") == "git-upload-pack" {
		if s.fetches == nil {
			s.fetches = map[string]int{}
		}
		s.fetches[strings.TrimSuffix(r.URL.Path, "/info/refs")]++
	}
	s.mu.Unlock()
	if down {
		http.Error(w, "git server is down", http.StatusServiceUnavailable)
		return
	}
	h := &cgi.Handler{
		Path: s.backend,
		Root: "/",
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=offshoot",
		},
		// GIT_TRACE2_PERF=<dir> in the caller's environment traces the
		// server's git processes (hack/trace-git-server.sh).
		InheritEnv: []string{"GIT_TRACE2_PERF"},
		Stderr:     s.Stderr,
	}
	if h.Stderr == nil {
		h.Stderr = io.Discard
	}
	h.ServeHTTP(w, r)
}

// SetDown makes every request fail with 503 (true) or serves again (false).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// PushAdverts counts receive-pack advertisements served (GET info/refs).
func (s *Server) PushAdverts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushAdverts
}

// Fetches counts the fetches (and clones) of repository name so far: the
// upload-pack advertisements served for it (GET info/refs).
func (s *Server) Fetches(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches["/"+name+".git"]
}

// Pushes counts receive-pack requests seen so far (POST git-receive-pack).
func (s *Server) Pushes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushes
}

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// CreateBare makes an empty bare repository name.git that accepts pushes and
// returns its URL. The default branch is main.
func (s *Server) CreateBare(name string) (string, error) {
	if strings.Contains(name, "..") || strings.ContainsAny(name, "/\\") {
		return "", errors.New("invalid repository name")
	}
	dir := filepath.Join(s.Root, name+".git")
	if err := run("", "git", "init", "--quiet", "--bare", "--initial-branch=main", dir); err != nil {
		return "", err
	}
	if err := run(dir, "git", "config", "http.receivepack", "true"); err != nil {
		return "", err
	}
	return s.URL + "/" + name + ".git", nil
}

// Dir is the on-disk directory of repository name.
func (s *Server) Dir(name string) string { return filepath.Join(s.Root, name+".git") }

func run(dir string, args ...string) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}
