package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/offshoot-dev/offshoot/internal/serve"
)

// serveGCPercent is serve's GOGC unless $GOGC is set: a burst's in-process
// kustomize builds allocate heavily, and at Go's default of 100 the collector
// ran ~150 times in one 1,000-webhook burst. Measured on the N = 10,000 repo
// (docs/performance.md): burst 5.2 s → 4.5 s, peak RSS ~100 → ~122 MB.
const serveGCPercent = 150

type serveOptions struct {
	f          *factory
	listen     string
	secretFile string
	interval   time.Duration
	window     time.Duration
}

func newServeCmd(f *factory) *cobra.Command {
	o := &serveOptions{f: f}
	cmd := &cobra.Command{
		Use:   "serve --listen :8080 --webhook-secret-file FILE",
		Short: "Receive GitHub webhooks and keep the environments repo in step with the app's branches",
		Long: `Serve GitHub webhooks on POST /webhook (push, create, delete, pull_request,
ping), signed with X-Hub-Signature-256. Events are answered at once (202) and
applied from a bounded queue: many pushes to one branch become one commit with
the latest SHA, and events for different branches arriving together become
one commit. New branches get the parent detected from the app repo's history
(--app-repo). Every --reconcile-interval the app repo's branches are listed
and the environments converged to them (missed webhooks, crashes); a failed or
empty listing changes nothing. After each commit Argo CD is told, as by the
CLI ($ARGOCD_APPSET_WEBHOOK, $ARGOCD_WEBHOOK, $ARGOCD_SERVER: see offshoot --help).

Also serves /healthz, /readyz (once a warm-up build of one environment is
done, and while the environments repo is reachable; webhooks arriving before
are queued) and /metrics (Prometheus). Logs are JSON. SIGTERM stops accepting
requests and finishes the queued work. The Go collector runs at GOGC=150
unless $GOGC is set.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), o) },
	}
	cmd.Flags().StringVar(&o.listen, "listen", ":8080", "address to listen on")
	cmd.Flags().StringVar(&o.secretFile, "webhook-secret-file", "", "file holding the webhook secret (default $OFFSHOOT_WEBHOOK_SECRET)")
	cmd.Flags().DurationVar(&o.interval, "reconcile-interval", 5*time.Minute, "how often to reconcile with the app repo's branches (0: never)")
	cmd.Flags().DurationVar(&o.window, "coalesce-window", 200*time.Millisecond, "how long to gather events into one commit")
	return cmd
}

func (o *serveOptions) secret() ([]byte, error) {
	if o.secretFile != "" {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return nil, err
		}
		return []byte(strings.TrimSpace(string(b))), nil
	}
	if s := o.f.WebhookSecret; s != "" {
		return []byte(s), nil
	}
	return nil, &flagError{errors.New("a webhook secret is required: --webhook-secret-file or OFFSHOOT_WEBHOOK_SECRET")}
}

func runServe(ctx context.Context, o *serveOptions) error {
	secret, err := o.secret()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(o.f.Err, nil))
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serveGCPercent)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	eng, err := o.f.engine(ctx, logger)
	if err != nil {
		return err
	}
	if eng.App == nil {
		logger.Warn("no --app-repo: no parent detection, no SHA lookup for create events, no reconcile")
	}
	srv := serve.New(serve.Options{Engine: eng, Window: o.window, Logger: logger, Metrics: serve.NewMetrics(reg)})
	return srv.Serve(ctx, serve.HTTPOptions{Listen: o.listen, Secret: secret, ReconcileInterval: o.interval, Registry: reg, Logger: logger})
}

func newReconcileCmd(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:   "reconcile",
		Short: "Converge the environments to the app repo's branches once",
		Long: `List the app repo's branches (--app-repo) and converge: create missing
environments for branches that want one (parent detected from history),
move environments to their branch's head, and remove environments whose
branch is gone — never protected ones, and nothing at all when the listing
fails or returns no branches.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.AppRepo == "" {
				return &flagError{errors.New("reconcile needs --app-repo (or OFFSHOOT_APP_REPO)")}
			}
			eng, err := f.engine(cmd.Context(), slog.New(slog.NewJSONHandler(f.Err, &slog.HandlerOptions{Level: slog.LevelWarn})))
			if err != nil {
				return err
			}
			eng.NoRetry = true
			res, err := eng.Reconcile(cmd.Context())
			if err != nil {
				return err
			}
			for _, it := range res.Outcome.RefusedItems() {
				fmt.Fprintf(f.Err, "offshoot: %s: %v\n", it.Request.Branch, it.Err)
			}
			fmt.Fprintf(f.Out, "reconciled: %d created, %d updated, %d deleted\n", len(res.Created), len(res.Updated), len(res.Deleted))
			for _, l := range []struct {
				what string
				l    []string
			}{{"created", res.Created}, {"updated", res.Updated}, {"deleted", res.Deleted}} {
				if len(l.l) > 0 {
					fmt.Fprintf(f.Out, "  %s: %s\n", l.what, strings.Join(l.l, ", "))
				}
			}
			return nil
		},
	}
}
