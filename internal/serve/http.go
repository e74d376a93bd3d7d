package serve

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/offshoot-dev/offshoot/internal/webhook"
)

// HTTPOptions configure the HTTP side of offshoot serve.
type HTTPOptions struct {
	Listen            string // e.g. ":8080"
	Secret            []byte
	ReconcileInterval time.Duration // 0: no periodic reconcile
	Registry          *prometheus.Registry
	Logger            *slog.Logger
	// Ready is called with the listener's address once it accepts requests.
	Ready func(addr string)
}

// Mux routes /webhook, /healthz, /readyz and /metrics.
func (s *Server) Mux(o HTTPOptions) http.Handler {
	wh := &webhook.Handler{
		Secret: o.Secret,
		Sink:   s,
		Filter: s.Filter,
		Logger: o.Logger,
		Observe: func(event, outcome string) {
			s.o.Metrics.Events.WithLabelValues(event, outcome).Inc()
		},
	}
	mux := http.NewServeMux()
	mux.Handle("/webhook", wh)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	var readyMu sync.Mutex
	var readyAt time.Time
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.Warmed() {
			// Webhooks are queued meanwhile; traffic waits for the warm-up.
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		readyMu.Lock()
		fresh := time.Since(readyAt) < 10*time.Second
		readyMu.Unlock()
		if !fresh {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			if _, err := s.o.Engine.Config(ctx); err != nil {
				http.Error(w, "environments repo not reachable: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			readyMu.Lock()
			readyAt = time.Now()
			readyMu.Unlock()
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if o.Registry != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))
	}
	return mux
}

// Serve runs offshoot serve until ctx is done: the HTTP endpoints and the
// worker (with its periodic reconcile). On shutdown it stops accepting
// requests, then lets the worker finish what was queued.
func (s *Server) Serve(ctx context.Context, o HTTPOptions) error {
	if o.Logger == nil {
		o.Logger = s.o.Logger
	}
	if _, err := s.o.Engine.Config(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.Mux(o), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	workCtx, stopWork := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Run(workCtx, o.ReconcileInterval) }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.o.Logger.Info("serving", "addr", ln.Addr().String())
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		stopWork()
		wg.Wait()
		return err
	}
	s.o.Logger.Info("shutting down: no new requests; finishing queued work")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	stopWork()
	wg.Wait()
	return nil
}
