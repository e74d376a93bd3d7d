// Command offshoot gives every git branch its own environment — the app and
// a copy of its PostgreSQL data — the GitOps way.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/offshoot-dev/offshoot/clone"
	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/argocd"
	"github.com/offshoot-dev/offshoot/internal/gitcache"
)

// Exit codes, decided here and nowhere else.
const (
	exitOK      = 0
	exitError   = 1 // the work failed (git, validation, config in the repo…)
	exitUsage   = 2 // the invocation is wrong (flags, arguments, branch names)
	exitUnsafe  = 3 // refused by a data-safety rule
	exitPending = 4 // not ready yet: what was asked for did not happen (in time)
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := &factory{Out: stdout, Err: stderr, Getenv: os.Getenv}
	cmd := newRootCmd(f)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "offshoot:", err)
	return exitCode(err)
}

func exitCode(err error) int {
	var ue *generator.UsageError
	var be *generator.BranchError
	var fe *flagError
	var pe *generator.PointInTimeError
	switch {
	case errors.As(err, &pe) && !pe.RetryAt.IsZero():
		return exitPending // not yet: the same command succeeds at RetryAt
	case errors.Is(err, clone.ErrUnsafe):
		return exitUnsafe
	case errors.Is(err, argocd.ErrNotReady):
		return exitPending
	case errors.Is(err, gitcache.ErrInsecureCredentials):
		return exitUsage
	case errors.As(err, &ue), errors.As(err, &be), errors.As(err, &fe):
		return exitUsage
	}
	return exitError
}

// flagError wraps cobra's argument and flag errors.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }
func (e *flagError) Unwrap() error { return e.err }
