package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"time"
)

// Errors say whether trying again can help. Adapters mark what they know
// to be passing — a network failure, a 5xx, a push that kept losing races —
// with Temporary; everything else (an invalid offshoot.yaml, a refused
// request, a failed validation, a safety rule, a 4xx) is terminal: it stops
// and is reported where the user looks.

type temporary struct{ err error }

func (t *temporary) Error() string { return t.err.Error() }
func (t *temporary) Unwrap() error { return t.err }

// Temporary marks err as one that a later attempt may not meet.
func Temporary(err error) error {
	if err == nil || IsTemporary(err) {
		return err
	}
	return &temporary{err}
}

// IsTemporary reports whether err may go away if the same work is tried
// again: marked Temporary, a network error, or a deadline that ran out.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var t *temporary
	var ne net.Error
	return errors.As(err, &t) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// Backoff is an exponential backoff with jitter and a bound.
type Backoff struct {
	Base     time.Duration // the first delay (default 1s)
	Max      time.Duration // no delay is longer (default 5m)
	Attempts int           // give up after this many attempts (default 8)
}

func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = time.Second
	}
	if b.Max <= 0 {
		b.Max = 5 * time.Minute
	}
	if b.Attempts <= 0 {
		b.Attempts = 8
	}
	return b
}

// Delay is how long to wait after the attempt-th failure (1-based): Base
// doubled each time, capped at Max, drawn from [d/2, d) so that writers
// that failed together do not retry in lockstep.
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.withDefaults()
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + rand.N(d/2+1)
}

// GiveUp reports whether the attempt-th failure is the last one allowed.
func (b Backoff) GiveUp(attempt int) bool { return attempt >= b.withDefaults().Attempts }
