package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/argocd"
)

type statusOptions struct {
	f         *factory
	branch    string
	output    string
	watch     bool
	until     string
	timeout   time.Duration
	interval  time.Duration
	refresh   bool
	insecure  bool
	plaintext bool
	grpcWeb   bool

	lastProgress string
}

func newStatusCmd(f *factory) *cobra.Command {
	o := &statusOptions{f: f, interval: time.Second}
	cmd := &cobra.Command{
		Use:   "status [BRANCH] [-w] [-o table|json]",
		Short: "Show what Argo CD has deployed of each environment",
		Long: `Show, through the Argo CD API server, each environment's Application: sync
status, health, the app commit running vs the one committed in env.yaml, the
environments-repo revision Argo CD compared, why it is failing, and its page in
the Argo CD UI. With BRANCH, only that branch's environment.

The exit code is 0 only when every environment shown is ready: Synced and
Healthy (--until synced: Synced only), running its committed SHA, with no sync
in progress; 4 when some are not (with -w: not within --timeout); 1 when
Argo CD cannot be asked. -w waits (at most --timeout), with a progress line
on stderr.

The API server is --argocd-server or $ARGOCD_SERVER (host[:port]; http://
implies --plaintext); the token is --argocd-token or $ARGOCD_AUTH_TOKEN, e.g.
an API key of an account allowed to get applications in project offshoot
(argocd account generate-token --account offshoot). It needs the CLI build:
the server build (-tags noargocdapi, the container image) leaves Argo CD's
client out.`,
		Example: `  offshoot status
  offshoot status feature_1 -w --timeout 5m
  ARGOCD_SERVER=argocd.example.com ARGOCD_AUTH_TOKEN=… offshoot status -o json`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if !hasArgoAPI {
				return errNoArgoAPI
			}
			switch o.output {
			case "table", "json":
			default:
				return &flagError{fmt.Errorf("invalid --output %q: want table or json", o.output)}
			}
			switch o.until {
			case "healthy", "synced":
			default:
				return &flagError{fmt.Errorf("invalid --until %q: want healthy or synced", o.until)}
			}
			if o.timeout <= 0 {
				return &flagError{fmt.Errorf("invalid --timeout %s: must be positive", o.timeout)}
			}
			if len(a) == 1 {
				o.branch = a[0]
				if err := generator.ValidateBranch(o.branch); err != nil {
					return err
				}
			}
			if f.ArgoServer == "" {
				return &flagError{errors.New("no Argo CD server: set --argocd-server or $ARGOCD_SERVER")}
			}
			if f.Token == "" {
				return &flagError{errors.New("no Argo CD token: set $ARGOCD_AUTH_TOKEN (or --argocd-token)")}
			}
			return runStatus(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	fl.BoolVarP(&o.watch, "watch", "w", false, "wait until every environment shown is ready (or --timeout)")
	fl.StringVar(&o.until, "until", "healthy", "what ready means: healthy (Synced and Healthy) or synced (clusters where workloads cannot become healthy)")
	fl.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long -w waits")
	fl.BoolVar(&o.refresh, "refresh", false, "ask Argo CD to compare with git now instead of at its next poll")
	fl.StringVar(&f.ArgoServer, "argocd-server", "", "Argo CD API server host[:port] (default $ARGOCD_SERVER)")
	fl.StringVar(&f.Token, "argocd-token", "", "Argo CD token (default $ARGOCD_AUTH_TOKEN; prefer the variable: flags show in ps)")
	fl.BoolVar(&o.insecure, "insecure", false, "skip TLS certificate verification of the Argo CD server")
	fl.BoolVar(&o.plaintext, "plaintext", false, "connect without TLS (an API server run with --insecure)")
	fl.BoolVar(&o.grpcWeb, "grpc-web", false, "use gRPC-web (behind proxies without HTTP/2)")
	return cmd
}

func runStatus(ctx context.Context, o *statusOptions) error {
	eng, err := o.f.Engine(ctx)
	if err != nil {
		return err
	}
	envs, err := eng.List(ctx)
	if err != nil {
		return err
	}
	if o.branch != "" {
		envs = slices.DeleteFunc(envs, func(e *generator.Environment) bool { return e.Branch != o.branch })
		if len(envs) == 0 {
			return &generator.UsageError{Msg: fmt.Sprintf("no environment for branch %q (offshoot list shows them)", o.branch)}
		}
	}
	client, err := newArgoClient(argocd.Options{
		Server: o.f.ArgoServer, Token: o.f.Token, Insecure: o.insecure, PlainText: o.plaintext,
		GRPCWeb: o.grpcWeb, UserAgent: "offshoot/" + version,
	})
	if err != nil {
		return err
	}
	defer client.Close()
	start := time.Now()
	items, err := argocd.Wait(ctx, client, envs, argocd.WaitOptions{
		Watch: o.watch, Timeout: o.timeout, Interval: o.interval, Refresh: o.refresh, SyncOnly: o.until == "synced",
		Single: o.branch != "", Progress: func(items []argocd.EnvStatus, ready int, elapsed time.Duration, err error) {
			progress(o, items, ready, elapsed, err)
		},
	})
	if o.watch && isTerminal(o.f.Err) {
		fmt.Fprintf(o.f.Err, "\r\033[K")
	}
	if items == nil {
		return err
	}
	if perr := printStatus(o, items); perr != nil {
		return perr
	}
	if err == nil && o.watch {
		fmt.Fprintf(o.f.Err, "all %d environment(s) ready after %s\n", len(items), time.Since(start).Round(100*time.Millisecond))
	}
	return err
}

// progress shows the wait: one line rewritten in place on a terminal,
// otherwise a line each time something other than the elapsed time changes.
func progress(o *statusOptions, items []argocd.EnvStatus, ready int, elapsed time.Duration, err error) {
	line := fmt.Sprintf("%d/%d ready", ready, len(items))
	if err != nil {
		line += " · " + err.Error()
	}
	for _, it := range items {
		if !it.Ready {
			dep := short(it.DeployedSHA)
			if dep == "" {
				dep = "-"
			}
			line += fmt.Sprintf(" · %s %s/%s %s→%s", it.Branch, it.Sync, it.Health, dep, short(it.SHA))
		}
	}
	full := fmt.Sprintf("waiting %s: %s", elapsed.Round(time.Second), line)
	if isTerminal(o.f.Err) {
		if len(full) > 160 {
			full = full[:157] + "..."
		}
		fmt.Fprintf(o.f.Err, "\r\033[K%s", full)
		return
	}
	if line != o.lastProgress {
		o.lastProgress = line
		fmt.Fprintln(o.f.Err, full)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func printStatus(o *statusOptions, items []argocd.EnvStatus) error {
	if o.output == "json" {
		enc := json.NewEncoder(o.f.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	}
	if len(items) == 0 {
		fmt.Fprintln(o.f.Out, "no environments")
		return nil
	}
	tw := tabwriter.NewWriter(o.f.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BRANCH\tSYNC\tHEALTH\tCOMMITTED\tDEPLOYED\tREVISION\tARGO CD")
	for _, it := range items {
		dep := short(it.DeployedSHA)
		if dep == "" {
			dep = "-"
		}
		rev := short(it.Revision)
		if rev == "" {
			rev = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Branch, it.Sync, it.Health, short(it.SHA), dep, rev, it.URL)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, it := range items {
		if it.Message != "" && !it.Ready {
			fmt.Fprintf(o.f.Out, "%s: %s\n", it.Branch, it.Message)
		}
	}
	return nil
}

// errNoArgoAPI is what needs Argo CD's API in a build without its client.
var errNoArgoAPI = errors.New("this offshoot was built without Argo CD's API client (-tags noargocdapi, as the server image is): " +
	"run offshoot status from a full build; serve tells Argo CD through $ARGOCD_APPSET_WEBHOOK")
