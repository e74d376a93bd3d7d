package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"github.com/offshoot-dev/offshoot/internal/gitserver"
	"github.com/offshoot-dev/offshoot/internal/serve"
	"github.com/offshoot-dev/offshoot/internal/webhook"
)

// Benchmarks of offshoot's event path against pre-filled repos on a real
// git smart-HTTP server. The N values come from OFFSHOOT_BENCH_N (default
// "10,1000,10000"); pre-filled repos are cached in bench/.cache.
//
//	go test ./bench -run '^$' -bench . -benchtime 30x
//	go test ./bench -run '^$' -bench 'NewSHA/N=10000' -benchtime 30x -cpuprofile cpu.out -memprofile mem.out

func sizes() []int {
	s := os.Getenv("OFFSHOOT_BENCH_N")
	if s == "" {
		s = "10,1000,10000"
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n >= 2 {
			out = append(out, n)
		}
	}
	return out
}

var stageSeq atomic.Int64

// setup stages a fresh copy of the n-environment repo on a git server and
// opens offshoot on it with a warm cache.
func setup(b *testing.B, n int) *Offshoot {
	b.Helper()
	cache, err := filepath.Abs(".cache")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := gitserver.Start(b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	name, err := Stage(cache, srv.Root, n, fmt.Sprintf("envs-%d-%d", n, stageSeq.Add(1)))
	if err != nil {
		b.Fatal(err)
	}
	off, err := OpenOffshoot(context.Background(), srv.URL+"/"+name+".git", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	// One unmeasured event: the first Apply loads kustomize's schema.
	if _, err := off.NewSHA(context.Background(), Branch(1), SHA(1, 99)); err != nil {
		b.Fatal(err)
	}
	return off
}

func BenchmarkNewSHA(b *testing.B) {
	for _, n := range sizes() {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			off := setup(b, n)
			ctx := context.Background()
			k := 0
			for b.Loop() {
				k++
				if _, err := off.NewSHA(ctx, Branch(1+(k*7919)%(n-1)), SHA(k, 100)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNewBranch(b *testing.B) {
	for _, n := range sizes() {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			off := setup(b, n)
			ctx := context.Background()
			k := 0
			for b.Loop() {
				k++
				if _, err := off.NewBranch(ctx, fmt.Sprintf("bench-b-%06d", k), SHA(k, 101)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDelete times deletions only; each deleted environment is
// created first, outside the timer.
func BenchmarkDelete(b *testing.B) {
	for _, n := range sizes() {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			off := setup(b, n)
			ctx := context.Background()
			k := 0
			for b.Loop() {
				k++
				br := fmt.Sprintf("bench-d-%06d", k)
				b.StopTimer()
				if _, err := off.NewBranch(ctx, br, SHA(k, 102)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := off.Delete(ctx, br); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNaiveNewSHA is the clone/write/kustomize/commit/push pipeline;
// it needs the kustomize CLI in PATH or bench/.cache/bin (make bench
// installs it).
func BenchmarkNaiveNewSHA(b *testing.B) {
	kust, err := filepath.Abs(".cache/bin/kustomize")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(kust); err != nil {
		b.Skip("no kustomize CLI in bench/.cache/bin (run make bench once)")
	}
	cfg, _, err := Config()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range sizes() {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			off := setup(b, n)
			nv := &Naive{URL: off.Repo.Location(), Kustomize: kust, Work: b.TempDir(), Shallow: true}
			k := 0
			for b.Loop() {
				k++
				if _, err := nv.NewSHA(cfg, Branch(1+(k*7919)%(n-1)), SHA(k, 103)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// burstSizes are the N for the 500-environment batch benchmarks:
// OFFSHOOT_BENCH_N's values above 500, or 10,000 alone when it is unset.
func burstSizes() []int {
	if os.Getenv("OFFSHOOT_BENCH_N") == "" {
		return []int{10000}
	}
	var out []int
	for _, n := range sizes() {
		if n > 500 {
			out = append(out, n)
		}
	}
	return out
}

// BenchmarkBatch500 is the burst's batch without the webhooks: 500 new SHAs
// of distinct environments planned, built and committed as one commit with
// engine.Handle, as serve does after coalescing (N from
// OFFSHOOT_BENCH_N, default 10000 only).
func BenchmarkBatch500(b *testing.B) {
	for _, n := range burstSizes() {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			off := setup(b, n)
			k := 0
			for b.Loop() {
				k++
				reqs := make([]engine.Request, 500)
				for i := range reqs {
					reqs[i] = engine.Request{Request: generator.Request{Op: generator.OpSync, Branch: Branch(1 + (i*7919)%(n-1)), SHA: SHA(i, 100+k)}}
				}
				out, err := off.Engine.Handle(context.Background(), reqs)
				if err != nil || !out.Changed {
					b.Fatal(err, out)
				}
			}
		})
	}
}

// BenchmarkServeBurst is the burst as serve handles it after the webhooks
// are verified: 1,000 push events over 500 branches offered to serve's
// queue, then one flush (N from OFFSHOOT_BENCH_N, default 10000 only).
func BenchmarkServeBurst(b *testing.B) {
	for _, n := range burstSizes() {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			off := setup(b, n)
			s := serve.New(serve.Options{Engine: off.Engine, Window: time.Millisecond, QueueSize: 2000,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			k := 0
			for b.Loop() {
				k++
				for i := 0; i < 1000; i++ {
					br := Branch(1 + ((i%500)*7919)%(n-1))
					if err := s.Offer(webhook.Event{Source: "push", Kind: webhook.KindSync, Branch: br, SHA: SHA(i, 200+k)}); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
