package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/argocd"
)

// statusItem is the stable, documented shape of `offshoot status -o json`.
type statusItem struct {
	Branch      string `json:"branch"`
	Env         string `json:"env"`
	Application string `json:"application"` // = the env's namespace
	// SHA is the app commit in env.yaml; DeployedSHA the tag of the live
	// image when it is that commit (or the only live image's tag).
	SHA         string `json:"sha"`
	DeployedSHA string `json:"deployedSHA"`
	Sync        string `json:"sync"`
	Health      string `json:"health"`
	// Revision is the environments-repo commit Argo CD compared.
	Revision   string `json:"revision"`
	Operation  string `json:"operation,omitempty"`
	Message    string `json:"message,omitempty"`
	URL        string `json:"url"`
	PreviewURL string `json:"previewURL"`
	// Ready: Synced (and Healthy unless --until synced), generated for and
	// running the committed SHA, no sync in progress.
	Ready bool `json:"ready"`
}

type statusOptions struct {
	f         *factory
	branch    string
	output    string
	watch     bool
	until     string
	timeout   time.Duration
	interval  time.Duration
	refresh   bool
	server    string
	token     string
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
in progress. -w waits for that (at most --timeout), with a progress line on
stderr.

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
			if o.server == "" {
				o.server = f.Getenv("ARGOCD_SERVER")
			}
			if o.token == "" {
				o.token = f.Getenv("ARGOCD_AUTH_TOKEN")
			}
			if o.server == "" {
				return &flagError{errors.New("no Argo CD server: set --argocd-server or $ARGOCD_SERVER")}
			}
			if o.token == "" {
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
	fl.StringVar(&o.server, "argocd-server", "", "Argo CD API server host[:port] (default $ARGOCD_SERVER)")
	fl.StringVar(&o.token, "argocd-token", "", "Argo CD token (default $ARGOCD_AUTH_TOKEN; prefer the variable: flags show in ps)")
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
	all, err := eng.List(ctx)
	if err != nil {
		return err
	}
	envs := all
	if o.branch != "" {
		envs = nil
		for _, e := range all {
			if e.Branch == o.branch {
				envs = append(envs, e)
			}
		}
		if len(envs) == 0 {
			return &generator.UsageError{Msg: fmt.Sprintf("no environment for branch %q (offshoot list shows them)", o.branch)}
		}
	}
	client, err := newArgoClient(argocd.Options{
		Server: o.server, Token: o.token, Insecure: o.insecure, PlainText: o.plaintext,
		GRPCWeb: o.grpcWeb, UserAgent: "offshoot/" + version,
	})
	if err != nil {
		return err
	}
	defer client.Close()

	syncOnly := o.until == "synced"
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start := time.Now()
	refresh := o.refresh
	var items []statusItem
	for {
		got, ferr := fetchStatus(ctx, client, envs, o.branch != "", refresh, syncOnly)
		if ferr != nil && !o.watch {
			return ferr
		}
		if ferr == nil {
			items, refresh = got, false
		}
		ready := 0
		for _, it := range items {
			if it.Ready {
				ready++
			}
		}
		if !o.watch || (ferr == nil && ready == len(items)) {
			break
		}
		progress(o, items, ready, time.Since(start), ferr)
		select {
		case <-ctx.Done():
		case <-time.After(o.interval):
		}
		if ctx.Err() != nil {
			if isTerminal(o.f.Err) {
				fmt.Fprintln(o.f.Err)
			}
			if items == nil {
				return fmt.Errorf("gave up after %s: %w", o.timeout, ferr)
			}
			break
		}
	}
	if o.watch && isTerminal(o.f.Err) {
		fmt.Fprintf(o.f.Err, "\r\033[K")
	}
	if err := printStatus(o, items); err != nil {
		return err
	}
	var waiting []string
	for _, it := range items {
		if !it.Ready {
			waiting = append(waiting, it.Branch)
		}
	}
	if len(waiting) > 0 {
		what := "Synced and Healthy"
		if syncOnly {
			what = "Synced"
		}
		verb := "are not"
		if o.watch {
			verb = fmt.Sprintf("did not get %s within %s:", what, o.timeout)
			return fmt.Errorf("%d of %d environment(s) %s %s", len(waiting), len(items), verb, strings.Join(waiting, ", "))
		}
		return fmt.Errorf("%d of %d environment(s) %s %s at their committed SHA: %s", len(waiting), len(items), verb, what, strings.Join(waiting, ", "))
	}
	if o.watch {
		fmt.Fprintf(o.f.Err, "all %d environment(s) ready after %s\n", len(items), time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

// fetchStatus reads the Applications of envs: one List call, or one Get
// (a refreshing one with refresh) per env when single or refreshing.
func fetchStatus(ctx context.Context, c argocd.Client, envs []*generator.Environment, single, refresh, syncOnly bool) ([]statusItem, error) {
	byName := map[string]argocd.AppStatus{}
	if single || refresh {
		for _, e := range envs {
			var s *argocd.AppStatus
			var err error
			if refresh {
				s, err = c.Refresh(ctx, e.Namespace)
			} else {
				s, err = c.Get(ctx, e.Namespace)
			}
			if errors.Is(err, argocd.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			byName[s.Name] = *s
		}
	} else {
		apps, err := c.List(ctx, argocd.ManagedBySelector)
		if err != nil {
			return nil, err
		}
		for _, a := range apps {
			byName[a.Name] = a
		}
	}
	items := make([]statusItem, 0, len(envs))
	for _, e := range envs {
		it := statusItem{Branch: e.Branch, Env: e.Name, Application: e.Namespace, SHA: e.SHA, PreviewURL: e.URL,
			URL: c.AppURL(e.Namespace)}
		s, ok := byName[e.Namespace]
		if !ok {
			it.Sync, it.Health = "-", "-"
			it.Message = "no Application yet (the ApplicationSet has not generated it)"
			items = append(items, it)
			continue
		}
		it.Sync, it.Health, it.Revision, it.Operation, it.Message = s.Sync, s.Health, s.Revision, s.Operation, s.Message
		switch {
		case s.Runs(e.SHA):
			it.DeployedSHA = e.SHA
		default:
			it.DeployedSHA = s.DeployedTag("")
		}
		if s.SHA != e.SHA && it.Message == "" {
			it.Message = fmt.Sprintf("the Application is still at %s: Argo CD has not read this commit of the environments repo yet", short(s.SHA))
		}
		it.Ready = s.Done(e.SHA, syncOnly)
		items = append(items, it)
	}
	return items, nil
}

// progress shows the wait: one line rewritten in place on a terminal,
// otherwise a line each time something other than the elapsed time changes.
func progress(o *statusOptions, items []statusItem, ready int, elapsed time.Duration, err error) {
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

func printStatus(o *statusOptions, items []statusItem) error {
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
