// Command offshoot-bench runs offshoot's benchmarks (issue #6) and prints
// the table of docs/performance.md: event → commit pushed latency through
// offshoot's own path at N = 10, 1,000 and 10,000 environments, the naive
// clone/write/kustomize/commit/push pipeline on the same repos, a burst of
// signed webhooks to a real `offshoot serve`, and its peak RSS.
//
//	go run ./bench/cmd/offshoot-bench            # from the module root (make bench)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/offshoot-dev/offshoot/bench"
	"github.com/offshoot-dev/offshoot/internal/gitserver"
)

type opts struct {
	ns          []int
	events      int
	warmup      int
	naive       map[int]int
	burst       int
	burstN      int
	burstBr     int
	concurrency int
	cache       string
	profile     bool
	skipNaive   bool
	skipBurst   bool
	maxPhase    time.Duration
}

type row struct {
	n                      int
	newSHA, newBranch, del bench.Stats
	naive                  bench.Stats
	cpuSHA, cpuNaive       bench.Stats // CPU time per event (process + children)
	cpuServer              bench.Stats // of cpuSHA, the git server's processes
	naiveErr, offErr       error
}

func main() {
	var o opts
	var ns, naive string
	flag.StringVar(&ns, "n", "10,1000,10000", "environment counts")
	flag.IntVar(&o.events, "events", 40, "measured offshoot events per kind and N (≥ 30)")
	flag.IntVar(&o.warmup, "warmup", 3, "unmeasured new-SHA events first")
	flag.StringVar(&naive, "naive", "10:30,1000:30,10000:5", "naive pipeline runs per N (fewer at 10,000: ~30 s each)")
	flag.IntVar(&o.burst, "burst", 1000, "webhooks in the burst")
	flag.IntVar(&o.burstN, "burst-n", 10000, "environments in the repo the burst runs on")
	flag.IntVar(&o.burstBr, "burst-branches", 500, "distinct branches the burst pushes to (events are spread over them)")
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrent webhook senders")
	flag.StringVar(&o.cache, "cache", "bench/.cache", "cache of pre-filled repos, tools, profiles")
	flag.BoolVar(&o.profile, "profile", true, "CPU and allocation profiles of the new-SHA path at the largest N")
	flag.BoolVar(&o.skipNaive, "skip-naive", false, "skip the naive pipeline")
	flag.BoolVar(&o.skipBurst, "skip-burst", false, "skip the serve burst")
	flag.DurationVar(&o.maxPhase, "max-phase", 4*time.Minute, "stop a kind's events early (after at least 5) once it has run this long; the table shows n")
	flag.Parse()
	for _, s := range strings.Split(ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			fatal(fmt.Errorf("bad -n %q", s))
		}
		o.ns = append(o.ns, n)
	}
	o.naive = map[int]int{}
	for _, s := range strings.Split(naive, ",") {
		k, v, _ := strings.Cut(s, ":")
		n, _ := strconv.Atoi(k)
		c, _ := strconv.Atoi(v)
		o.naive[n] = c
	}
	if err := run(context.Background(), o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "offshoot-bench:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, o opts) error {
	cache, err := filepath.Abs(o.cache)
	if err != nil {
		return err
	}
	modRoot, err := os.Getwd()
	if err != nil {
		return err
	}
	work := filepath.Join(cache, "run")
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	for _, d := range []string{"server", "offshoot-cache", "naive", "serve-cache", "profiles"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return err
		}
	}
	// Build the serve binary first, from the same sources as this driver.
	var bin string
	if !o.skipBurst {
		if bin, err = bench.BuildOffshoot(modRoot, work); err != nil {
			return err
		}
	}
	machine := machineLine()
	logf("machine: %s", machine)

	for _, n := range append(append([]int{}, o.ns...), o.burstN) {
		start := time.Now()
		if _, err := bench.Template(filepath.Join(cache), n); err != nil {
			return fmt.Errorf("pre-fill %d: %w", n, err)
		}
		logf("pre-filled repo with %d environments ready (%v)", n, time.Since(start).Round(time.Millisecond))
	}
	kustomize, err := kustomizeCLI(cache)
	if err != nil && !o.skipNaive {
		return err
	}
	srv, err := gitserver.Start(filepath.Join(work, "server"), "")
	if err != nil {
		return err
	}
	defer srv.Close()
	cfg, _, err := bench.Config()
	if err != nil {
		return err
	}

	var rows []row
	for _, n := range o.ns {
		r := row{n: n}
		name, err := bench.Stage(cache, srv.Root, n, fmt.Sprintf("envs-%d", n))
		if err != nil {
			return err
		}
		url := srv.URL + "/" + name + ".git"
		off, err := bench.OpenOffshoot(ctx, url, filepath.Join(work, "offshoot-cache", name))
		if err != nil {
			return err
		}
		children := n - 1
		pick := func(k int) string { return bench.Branch(1 + (k*7919)%children) }
		for k := 0; k < o.warmup; k++ {
			if _, err := off.NewSHA(ctx, pick(k), bench.SHA(k, 1)); err != nil {
				return err
			}
		}
		var shaD, brD, delD, cpuD, srvD []time.Duration
		more := func(k int, since time.Time) bool {
			return k < o.events && (k < 5 || time.Since(since) < o.maxPhase)
		}
		phase := time.Now()
		for k := 0; more(k, phase); k++ {
			c, sc := bench.CPUTime(), bench.ChildCPUTime()
			d, err := off.NewSHA(ctx, pick(o.warmup+k), bench.SHA(k, 2))
			if err != nil {
				return err
			}
			shaD, cpuD, srvD = append(shaD, d), append(cpuD, bench.CPUTime()-c), append(srvD, bench.ChildCPUTime()-sc)
		}
		r.newSHA, r.cpuSHA, r.cpuServer = bench.Summarise(shaD), bench.Summarise(cpuD), bench.Summarise(srvD)
		logf("N=%d offshoot new SHA: p50 %v p95 %v (CPU p50 %v, of which git server %v)", n, r.newSHA.P50, r.newSHA.P95, r.cpuSHA.P50, r.cpuServer.P50)
		phase = time.Now()
		for k := 0; more(k, phase); k++ {
			d, err := off.NewBranch(ctx, fmt.Sprintf("bench-new-%03d", k), bench.SHA(k, 3))
			if err != nil {
				return err
			}
			brD = append(brD, d)
		}
		r.newBranch = bench.Summarise(brD)
		logf("N=%d offshoot new branch: p50 %v p95 %v", n, r.newBranch.P50, r.newBranch.P95)
		phase = time.Now()
		for k := 0; k < len(brD) && more(k, phase); k++ {
			d, err := off.Delete(ctx, fmt.Sprintf("bench-new-%03d", k))
			if err != nil {
				return err
			}
			delD = append(delD, d)
		}
		r.del = bench.Summarise(delD)
		logf("N=%d offshoot delete: p50 %v p95 %v", n, r.del.P50, r.del.P95)

		if o.profile && n == o.ns[len(o.ns)-1] {
			if err := profile(ctx, off, pick, o.events, filepath.Join(cache, "profiles")); err != nil {
				return err
			}
		}

		if runs := o.naive[n]; runs > 0 && !o.skipNaive {
			nv := &bench.Naive{URL: url, Kustomize: kustomize, Work: filepath.Join(work, "naive"), Shallow: true}
			var d, cd []time.Duration
			phase := time.Now()
			for k := 0; k < runs && (k < 3 || time.Since(phase) < o.maxPhase); k++ {
				c := bench.CPUTime()
				t, err := nv.NewSHA(cfg, pick(1000+k), bench.SHA(k, 4))
				if err != nil {
					r.naiveErr = err
					break
				}
				d, cd = append(d, t), append(cd, bench.CPUTime()-c)
			}
			r.naive, r.cpuNaive = bench.Summarise(d), bench.Summarise(cd)
			logf("N=%d naive new SHA (%d runs): p50 %v p95 %v (CPU p50 %v)", n, len(d), r.naive.P50, r.naive.P95, r.cpuNaive.P50)
		}
		rows = append(rows, r)
		_ = os.RemoveAll(filepath.Join(work, "offshoot-cache", name))
	}

	var burst *bench.BurstResult
	var hwm, rss int64
	var burstErr error
	if !o.skipBurst {
		burst, hwm, rss, burstErr = runBurst(ctx, o, cache, work, bin, srv)
		if burstErr != nil {
			logf("burst failed: %v", burstErr)
		}
	}
	printTable(os.Stdout, o, machine, rows, burst, hwm, rss, burstErr)
	return nil
}

func runBurst(ctx context.Context, o opts, cache, work, bin string, srv *gitserver.Server) (*bench.BurstResult, int64, int64, error) {
	name, err := bench.Stage(cache, srv.Root, o.burstN, fmt.Sprintf("burst-%d", o.burstN))
	if err != nil {
		return nil, 0, 0, err
	}
	secret := []byte("bench-webhook-secret")
	start := time.Now()
	s, err := bench.StartServe(bin, srv.URL+"/"+name+".git", filepath.Join(work, "serve-cache"), filepath.Join(work, "serve.log"), secret)
	if err != nil {
		return nil, 0, 0, err
	}
	defer s.Stop()
	logf("offshoot serve ready on the %d-environment repo (%v)", o.burstN, time.Since(start).Round(time.Millisecond))
	nb := o.burstBr
	if nb > o.burstN-1 {
		nb = o.burstN - 1
	}
	branches := make([]string, nb)
	for i := range branches {
		branches[i] = bench.Branch(1 + (i*7919)%(o.burstN-1))
	}
	res, err := bench.Burst(ctx, s.URL, srv.Dir(name), secret, branches, o.burst, o.concurrency, 3*time.Minute)
	if err != nil {
		return nil, 0, 0, err
	}
	hwm, rss, err := s.Memory()
	logf("burst: %+v; serve VmHWM %d MiB", *res, hwm>>20)
	return res, hwm, rss, err
}

// profile records CPU and allocation profiles of `events` new-SHA events.
func profile(ctx context.Context, off *bench.Offshoot, pick func(int) string, events int, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cpu, err := os.Create(filepath.Join(dir, "newsha.cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	runtime.GC()
	// The allocation profile counts from the process start: one taken
	// before the window is the base to subtract (pprof -diff_base).
	base, err := os.Create(filepath.Join(dir, "newsha.allocs.base.pprof"))
	if err != nil {
		return err
	}
	defer base.Close()
	if err := pprof.Lookup("allocs").WriteTo(base, 0); err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	for k := 0; k < events; k++ {
		if _, err := off.NewSHA(ctx, pick(5000+k), bench.SHA(k, 5)); err != nil {
			pprof.StopCPUProfile()
			return err
		}
	}
	pprof.StopCPUProfile()
	mem, err := os.Create(filepath.Join(dir, "newsha.allocs.pprof"))
	if err != nil {
		return err
	}
	defer mem.Close()
	logf("profiles written to %s", dir)
	return pprof.Lookup("allocs").WriteTo(mem, 0)
}

func kustomizeCLI(cache string) (string, error) {
	if p, err := exec.LookPath("kustomize"); err == nil {
		return p, nil
	}
	gobin := filepath.Join(cache, "bin")
	p := filepath.Join(gobin, "kustomize")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	logf("installing kustomize v5.4.3 into %s", gobin)
	cmd := exec.Command("go", "install", "sigs.k8s.io/kustomize/kustomize/v5@v5.4.3")
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod")
	cmd.Dir = os.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install kustomize: %v: %s", err, out)
	}
	return p, nil
}

func machineLine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
		if len(f) >= 2 {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/(1<<20))
		}
	}
	gitv, _ := bench.Git("", "--version")
	return fmt.Sprintf("%d CPUs (nproc), %s%s, %s, %s/%s, %s", runtime.NumCPU(), model, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH, gitv)
}

func ms(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// msn is ms, with the number of events when fewer than wanted were run.
func msn(s bench.Stats, want int) string {
	if s.N > 0 && s.N < want {
		return fmt.Sprintf("%s (n=%d)", ms(s.P50), s.N)
	}
	return ms(s.P50)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**NOT met**"
}

func printTable(w io.Writer, o opts, machine string, rows []row, b *bench.BurstResult, hwm, rss int64, burstErr error) {
	fmt.Fprintf(w, "\n## offshoot bench — %s\n\nMachine: %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine)
	fmt.Fprintf(w, "Event → commit pushed (engine.Handle, a batch of one with its own snapshot, on a long-lived cached clone), %d events per kind after %d warm-up (fewer, shown as n=, when a kind ran past -max-phase %v), git smart HTTP (git http-backend) on 127.0.0.1. CPU = user+system of the bench process and its children (git server, CLIs); git server CPU = the children alone during offshoot's new-SHA events (git http-backend, receive-pack, unpack-objects, connectivity check):\n\n", o.events, o.warmup, o.maxPhase)
	fmt.Fprintln(w, "| N envs | new SHA p50 | new SHA p95 | new SHA CPU p50 | git server CPU p50 | new branch p50 | new branch p95 | delete p50 | delete p95 | naive new SHA p50 (runs) | naive p95 | naive CPU p50 | naive ÷ offshoot (p50 wall) | (p50 CPU) |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	byN := map[int]row{}
	for _, r := range rows {
		byN[r.n] = r
		ratio := "—"
		if r.naive.N > 0 && r.newSHA.P50 > 0 {
			ratio = fmt.Sprintf("%.1f×", float64(r.naive.P50)/float64(r.newSHA.P50))
		}
		naive := "—"
		if r.naive.N > 0 {
			naive = fmt.Sprintf("%s (%d)", ms(r.naive.P50), r.naive.N)
		}
		if r.naiveErr != nil {
			naive += " error: " + r.naiveErr.Error()
		}
		cratio := "—"
		if r.cpuNaive.N > 0 && r.cpuSHA.P50 > 0 {
			cratio = fmt.Sprintf("%.1f×", float64(r.cpuNaive.P50)/float64(r.cpuSHA.P50))
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.n, msn(r.newSHA, o.events), ms(r.newSHA.P95), ms(r.cpuSHA.P50), ms(r.cpuServer.P50),
			msn(r.newBranch, o.events), ms(r.newBranch.P95), msn(r.del, o.events), ms(r.del.P95), naive, ms(r.naive.P95), ms(r.cpuNaive.P50), ratio, cratio)
	}
	fmt.Fprintln(w, "\n| figure | target | measured | |\n|---|---|---|---|")
	if r, ok := byN[10000]; ok {
		fmt.Fprintf(w, "| p50 new-SHA event at N = 10,000 | ≤ 30 ms | %s | %s |\n", ms(r.newSHA.P50), verdict(r.newSHA.P50 <= 30*time.Millisecond))
		if r10, ok := byN[10]; ok {
			x := float64(r.newSHA.P50) / float64(r10.newSHA.P50)
			fmt.Fprintf(w, "| p50 at N = 10,000 ÷ p50 at N = 10 | ≤ 1.5 | %.2f | %s |\n", x, verdict(x <= 1.5))
		}
	}
	if r, ok := byN[1000]; ok && r.naive.N > 0 {
		x := float64(r.naive.P50) / float64(r.newSHA.P50)
		fmt.Fprintf(w, "| naive pipeline ÷ offshoot at N = 1,000 | ≥ 20× | %.1f× | %s |\n", x, verdict(x >= 20))
	}
	switch {
	case burstErr != nil:
		fmt.Fprintf(w, "| %d-event burst fully reflected | ≤ 5 s, 0 lost | error: %v | **NOT met** |\n", o.burst, burstErr)
	case b != nil:
		refl := "not within 3 min"
		if b.Reflected > 0 {
			refl = fmt.Sprintf("%.2f s", b.Reflected.Seconds())
		}
		fmt.Fprintf(w, "| %d-event burst fully reflected (N = %d, %d branches, %d commits, %d rejected, sent in %.2f s) | ≤ 5 s, 0 lost | %s, %d lost | %s |\n",
			b.Events, o.burstN, b.Branches, b.Commits, b.Rejected, b.Sent.Seconds(), refl, b.Lost, verdict(b.Reflected > 0 && b.Reflected <= 5*time.Second && b.Lost == 0))
		fmt.Fprintf(w, "| `serve` peak RSS at N = %d (VmHWM after the burst; VmRSS %d MiB) | ≤ 150 MB | %.0f MB | %s |\n",
			o.burstN, rss>>20, float64(hwm)/1e6, verdict(hwm <= 150e6))
	}
}
