package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
)

// Serve is a running `offshoot serve` process.
type Serve struct {
	Cmd  *exec.Cmd
	URL  string
	Log  string
	done chan error
}

// StartServe runs bin serve on a free port against envURL, with no app
// repo and no periodic reconcile, and waits until /readyz answers (the
// environments repo has been cloned into the cache).
func StartServe(bin, envURL, cacheDir, logFile string, secret []byte) (*Serve, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	lf, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--listen", addr, "--env-repo", envURL, "--cache-dir", cacheDir, "--reconcile-interval", "0")
	cmd.Env = append(os.Environ(), "OFFSHOOT_WEBHOOK_SECRET="+string(secret), "OFFSHOOT_APP_REPO=")
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	s := &Serve{Cmd: cmd, URL: "http://" + addr, Log: logFile, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); lf.Close() }()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			log, _ := os.ReadFile(logFile)
			return nil, fmt.Errorf("offshoot serve exited: %v\n%s", err, tail(log))
		default:
		}
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Stop()
	return nil, fmt.Errorf("offshoot serve not ready after 5 minutes")
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Stop sends SIGTERM (graceful: the queue is finished) and waits.
func (s *Serve) Stop() {
	_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.Cmd.Process.Kill()
		<-s.done
	}
}

// Memory reads VmHWM (peak RSS) and VmRSS of the process, in bytes.
func (s *Serve) Memory() (hwm, rss int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.Cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			hwm = v * 1024
		case "VmRSS:":
			rss = v * 1024
		}
	}
	return hwm, rss, nil
}

// Webhook is one signed GitHub delivery.
type Webhook struct {
	Event, Delivery string
	Body            []byte
}

var repoJSON = map[string]any{"full_name": "acme/shop", "name": "shop", "owner": map[string]any{"login": "acme"}}

// PushWebhook is a GitHub push event moving branch from before to after,
// shaped like internal/serve's tests build them.
func PushWebhook(delivery, branch, before, after string) Webhook {
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/" + branch, "before": before, "after": after, "created": false, "deleted": false,
		"forced": false, "repository": repoJSON, "sender": map[string]any{"login": "dev"}, "head_commit": map[string]any{"id": after},
	})
	return Webhook{Event: "push", Delivery: delivery, Body: body}
}

// Post sends one signed webhook and returns the status code.
func Post(client *http.Client, url string, secret []byte, w Webhook) (int, error) {
	mac := hmac.New(sha256.New, secret)
	mac.Write(w.Body)
	req, err := http.NewRequest(http.MethodPost, url+"/webhook", bytes.NewReader(w.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", w.Event)
	req.Header.Set("X-GitHub-Delivery", w.Delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// BurstResult is what a burst measured.
type BurstResult struct {
	Events, Branches int
	Sent             time.Duration // all deliveries answered
	Reflected        time.Duration // first send → remote head holding every final SHA (0: never)
	Commits          int
	Lost             int // branches whose env.yaml does not hold the final SHA
	Rejected         int // deliveries not answered 202
}

// Burst sends events webhooks, spread over branches (each branch gets
// events/branches pushes, in order; the last SHA must win), from
// `concurrency` clients, and watches the server's bare repository until
// every branch's env.yaml holds its final SHA or timeout passes.
func Burst(ctx context.Context, serveURL, bareDir string, secret []byte, branches []string, events, concurrency int, timeout time.Duration) (*BurstResult, error) {
	res := &BurstResult{Events: events, Branches: len(branches)}
	before, err := Git(bareDir, "rev-parse", "refs/heads/main")
	if err != nil {
		return nil, err
	}
	rounds := (events + len(branches) - 1) / len(branches)
	final := map[string]string{}
	var phases [][]Webhook
	sent := 0
	for r := 0; r < rounds && sent < events; r++ {
		var phase []Webhook
		for i, b := range branches {
			if sent == events {
				break
			}
			prev := final[b]
			if prev == "" {
				prev = strings.Repeat("0", 39) + "1"
			}
			sha := SHA(100000+i, 1000+r)
			phase = append(phase, PushWebhook(fmt.Sprintf("burst-%d-%d", r, i), b, prev, sha))
			final[b] = sha
			sent++
		}
		phases = append(phases, phase)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}, Timeout: 30 * time.Second}
	start := time.Now()
	var mu sync.Mutex
	for _, phase := range phases {
		ch := make(chan Webhook)
		var wg sync.WaitGroup
		for c := 0; c < concurrency; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for w := range ch {
					code, err := Post(client, serveURL, secret, w)
					if err != nil || code != http.StatusAccepted {
						mu.Lock()
						res.Rejected++
						mu.Unlock()
					}
				}
			}()
		}
		for _, w := range phase {
			ch <- w
		}
		close(ch)
		wg.Wait()
	}
	res.Sent = time.Since(start)

	cf, err := newCatFile(bareDir)
	if err != nil {
		return nil, err
	}
	defer cf.Close()
	check := func(commit string) (int, error) {
		lost := 0
		for b, want := range final {
			name, _ := generator.EnvName(b)
			data, err := cf.Get(commit + ":" + generator.EnvDir(name) + "/" + generator.EnvFile)
			if err != nil {
				return 0, err
			}
			if !bytes.Contains(data, []byte("\nsha: \""+want+"\"\n")) && !bytes.Contains(data, []byte("\nsha: "+want+"\n")) {
				lost++
			}
		}
		return lost, nil
	}
	last := before
	deadline := start.Add(timeout)
	res.Lost = len(final)
	for time.Now().Before(deadline) {
		head, err := mainHead(bareDir)
		if err != nil {
			return nil, err
		}
		if head != last {
			seen := time.Since(start)
			last = head
			if res.Lost, err = check(head); err != nil {
				return nil, err
			}
			if res.Lost == 0 {
				res.Reflected = seen
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Anything arriving later would be a stale SHA overwriting the final one.
	time.Sleep(time.Second)
	head, err := Git(bareDir, "rev-parse", "refs/heads/main")
	if err != nil {
		return nil, err
	}
	if res.Lost, err = check(head); err != nil {
		return nil, err
	}
	n, err := Git(bareDir, "rev-list", "--count", before+".."+head)
	if err != nil {
		return nil, err
	}
	res.Commits, _ = strconv.Atoi(n)
	return res, nil
}

// mainHead reads refs/heads/main of the bare repo at dir: the loose ref
// file receive-pack renames into place when it updates the branch, or git
// when the ref is only packed. Polling it every 10 ms must not take the
// CPU it measures: a git process per poll would (~100 a second on two
// cores).
func mainHead(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "refs", "heads", "main"))
	if err == nil && len(bytes.TrimSpace(b)) == 40 {
		return string(bytes.TrimSpace(b)), nil
	}
	return Git(dir, "rev-parse", "refs/heads/main")
}

// catFile reads blobs through one `git cat-file --batch` process.
type catFile struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func newCatFile(dir string) (*catFile, error) {
	cmd := exec.Command("git", "-C", dir, "cat-file", "--batch")
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &catFile{cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}

func (c *catFile) Get(rev string) ([]byte, error) {
	if _, err := fmt.Fprintln(c.in, rev); err != nil {
		return nil, err
	}
	hdr, err := c.out.ReadString('\n')
	if err != nil {
		return nil, err
	}
	f := strings.Fields(hdr)
	if len(f) == 2 && f[1] == "missing" {
		return nil, nil
	}
	if len(f) != 3 {
		return nil, fmt.Errorf("cat-file: %q", hdr)
	}
	size, _ := strconv.Atoi(f[2])
	buf := make([]byte, size+1)
	if _, err := io.ReadFull(c.out, buf); err != nil {
		return nil, err
	}
	return buf[:size], nil
}

func (c *catFile) Close() {
	c.in.Close()
	_ = c.cmd.Wait()
}

// BuildOffshoot builds cmd/offshoot from the module at modRoot into dir,
// with -tags noargocdapi like the server image.
func BuildOffshoot(modRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "offshoot")
	// As the Dockerfile builds the server image: without Argo CD's API
	// client, which serve does not use.
	cmd := exec.Command("go", "build", "-tags", "noargocdapi", "-o", bin, "./cmd/offshoot")
	cmd.Dir = modRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	return bin, nil
}
