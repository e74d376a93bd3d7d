// Package webhook is the HTTP intake for GitHub webhooks: it authenticates a
// delivery (HMAC-SHA256 over the raw body), maps push / create / delete /
// pull_request payloads to branch events, drops redeliveries, and hands the
// event to a non-blocking Sink. It never does slow work itself.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind says what should happen to a branch's environment.
type Kind string

const (
	// KindSync creates or updates the branch's environment.
	KindSync Kind = "sync"
	// KindDelete tears the branch's environment down.
	KindDelete Kind = "delete"
)

// Event is what offshoot does with one webhook delivery.
type Event struct {
	Delivery string    // X-GitHub-Delivery
	Source   string    // GitHub event name: push, create, delete, pull_request
	Kind     Kind      // sync or delete
	Branch   string    // raw branch name (refs/heads/ stripped)
	SHA      string    // head commit; empty when the payload has none (create events, branch deletions)
	Parent   string    // pull_request: the base branch; else empty
	PR       int       // pull_request number, else 0
	Labels   []string  // pull_request labels
	Received time.Time // when the request arrived (Handler.Now)
}

// Sink takes events; it must not block. ErrBusy means the queue is full.
type Sink interface{ Offer(Event) error }

// ErrBusy is returned by a Sink whose queue is full. The handler answers
// 503 with Retry-After and does not remember the delivery as seen.
var ErrBusy = errors.New("queue full")

// Filter decides which branches/PRs get environments (config-driven; nil = all).
// A false ok makes the delivery "ignored" with the given reason.
type Filter func(Event) (ok bool, reason string)

// Outcomes passed to Handler.Observe and logged as "outcome".
const (
	OutcomeQueued               = "queued"
	OutcomeDuplicate            = "duplicate"
	OutcomeIgnored              = "ignored"
	OutcomeUnauthorized         = "unauthorized"
	OutcomeBadRequest           = "bad_request"
	OutcomeTooLarge             = "too_large"
	OutcomeUnsupportedMediaType = "unsupported_media_type"
	OutcomeBusy                 = "busy"
	OutcomePong                 = "pong"
	OutcomeMethodNotAllowed     = "method_not_allowed"
	// OutcomeError: the Sink failed with something other than ErrBusy (or is nil) → 500.
	OutcomeError = "error"
)

const (
	// DefaultMaxBody is used when Handler.MaxBody is <= 0.
	DefaultMaxBody int64 = 1 << 20
	// DefaultDedupeSize is how many recently queued delivery IDs are remembered.
	DefaultDedupeSize = 10000
	// RetryAfterSeconds is sent with 503 when the Sink is busy.
	RetryAfterSeconds = 5

	maxDeliveryLen = 128  // GitHub sends GUIDs (36 bytes)
	maxBranchLen   = 1024 // "obviously bad"; real validation happens later
	maxLogField    = 128  // cap on untrusted header values echoed into logs
)

// Handler receives GitHub webhook deliveries. The zero value refuses every
// request (no Secret). A Handler must not be copied after first use.
type Handler struct {
	Secret  []byte       // required; an empty secret refuses every request (401)
	Sink    Sink         // receives queued events; nil → 500 for events that would be queued
	Filter  Filter       // nil = every branch/PR
	MaxBody int64        // default 1 MiB
	Logger  *slog.Logger // nil = discard
	Now     func() time.Time
	// Observe, if set, is called once per request with (event name, outcome).
	// To keep metric label sets bounded, the event name is the X-GitHub-Event
	// header only when the request was authenticated (or the name is one of
	// push, create, delete, pull_request, ping); otherwise it is "unknown".
	Observe func(event, outcome string)

	dedupeSize int        // tests; 0 = DefaultDedupeSize
	testHook   func()     // tests: called when a request starts waiting on an in-flight twin
	once       sync.Once  // initialises seen
	seen       *recentSet // delivery IDs recently queued (or being offered)
}

// result is what one request turned into.
type result struct {
	status  int
	outcome string
	reason  string // ignored / bad request / error detail (safe to show)
	event   Event  // filled once mapped
	header  http.Header
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	received := now()
	h.once.Do(func() {
		n := h.dedupeSize
		if n <= 0 {
			n = DefaultDedupeSize
		}
		h.seen = newRecentSet(n)
	})

	name := r.Header.Get("X-GitHub-Event")
	delivery := r.Header.Get("X-GitHub-Delivery")
	res, authed := h.serve(w, r, name, delivery, received)

	for k, v := range res.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(res.status)
	_, _ = w.Write(responseBody(res))

	h.log(r, res, name, delivery)
	if h.Observe != nil {
		h.Observe(metricEvent(name, authed), res.outcome)
	}
}

// serve does the work; authed reports whether the signature was verified.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, name, delivery string, received time.Time) (res result, authed bool) {
	if len(h.Secret) == 0 {
		return result{status: http.StatusUnauthorized, outcome: OutcomeUnauthorized, reason: "no secret configured"}, false
	}
	if r.Method != http.MethodPost {
		return result{status: http.StatusMethodNotAllowed, outcome: OutcomeMethodNotAllowed,
			header: http.Header{"Allow": {http.MethodPost}}}, false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return result{status: http.StatusUnsupportedMediaType, outcome: OutcomeUnsupportedMediaType}, false
	}

	limit := h.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if r.ContentLength > limit {
		return result{status: http.StatusRequestEntityTooLarge, outcome: OutcomeTooLarge}, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return result{status: http.StatusRequestEntityTooLarge, outcome: OutcomeTooLarge}, false
		}
		return result{status: http.StatusBadRequest, outcome: OutcomeBadRequest, reason: "reading body failed"}, false
	}

	if !validSignature(h.Secret, body, r.Header.Values("X-Hub-Signature-256")) {
		return result{status: http.StatusUnauthorized, outcome: OutcomeUnauthorized}, false
	}

	// Authenticated from here on.
	if name == "" || delivery == "" {
		return badRequest("missing X-GitHub-Event or X-GitHub-Delivery"), true
	}
	if len(delivery) > maxDeliveryLen || hasControl(delivery) {
		return badRequest("invalid X-GitHub-Delivery"), true
	}
	if name == "ping" {
		return result{status: http.StatusOK, outcome: OutcomePong}, true
	}

	ev, ignore, err := mapEvent(name, body)
	if err != nil {
		return badRequest(err.Error()), true
	}
	if ignore != "" {
		return result{status: http.StatusAccepted, outcome: OutcomeIgnored, reason: ignore, event: ev}, true
	}
	ev.Delivery = delivery
	ev.Received = received

	if h.Filter != nil {
		if ok, why := h.Filter(ev); !ok {
			if why == "" {
				why = "filtered"
			}
			return result{status: http.StatusAccepted, outcome: OutcomeIgnored, reason: why, event: ev}, true
		}
	}
	return h.offer(r, ev), true
}

// offer hands ev to the Sink exactly once per delivery ID. Concurrent twins of
// an in-flight delivery wait for it: if it was queued they are duplicates, if
// it failed one of them takes over.
func (h *Handler) offer(r *http.Request, ev Event) result {
	res := result{event: ev}
	var slot *recentEntry
	for slot == nil {
		entry, dup, wait := h.seen.acquire(ev.Delivery)
		switch {
		case dup:
			res.status, res.outcome = http.StatusOK, OutcomeDuplicate
			return res
		case entry != nil:
			slot = entry
		default:
			if h.testHook != nil {
				h.testHook()
			}
			select {
			case <-wait:
			case <-r.Context().Done():
				return busy(res)
			}
		}
	}

	var err error
	if h.Sink == nil {
		err = errors.New("no sink configured")
	} else {
		err = h.Sink.Offer(ev)
	}
	h.seen.release(slot, err == nil)

	switch {
	case err == nil:
		res.status, res.outcome = http.StatusAccepted, OutcomeQueued
	case errors.Is(err, ErrBusy):
		res = busy(res)
	default:
		res.status, res.outcome, res.reason = http.StatusInternalServerError, OutcomeError, err.Error()
	}
	return res
}

func busy(res result) result {
	res.status, res.outcome = http.StatusServiceUnavailable, OutcomeBusy
	res.header = http.Header{"Retry-After": {strconv.Itoa(RetryAfterSeconds)}}
	return res
}

func badRequest(reason string) result {
	return result{status: http.StatusBadRequest, outcome: OutcomeBadRequest, reason: reason}
}

// validSignature checks X-Hub-Signature-256 ("sha256=<hex>") in constant time
// with respect to the expected MAC. Exactly one header value is accepted.
func validSignature(secret, body []byte, values []string) bool {
	if len(values) != 1 {
		return false
	}
	hexSig, ok := strings.CutPrefix(values[0], "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), got)
}

// responseBody renders the small JSON answer. Nothing in it distinguishes the
// ways a signature can be wrong.
func responseBody(res result) []byte {
	var v any
	switch res.outcome {
	case OutcomeQueued:
		v = map[string]any{"queued": true, "branch": res.event.Branch, "kind": res.event.Kind}
	case OutcomeDuplicate:
		v = map[string]any{"queued": false, "duplicate": true, "branch": res.event.Branch, "kind": res.event.Kind}
	case OutcomeIgnored:
		v = map[string]any{"queued": false, "ignored": true, "reason": res.reason}
	case OutcomePong:
		v = map[string]any{"pong": true}
	case OutcomeUnauthorized:
		v = map[string]string{"error": "invalid signature"}
	case OutcomeMethodNotAllowed:
		v = map[string]string{"error": "method not allowed"}
	case OutcomeUnsupportedMediaType:
		v = map[string]string{"error": "content type must be application/json"}
	case OutcomeTooLarge:
		v = map[string]string{"error": "payload too large"}
	case OutcomeBadRequest:
		v = map[string]string{"error": "bad request: " + res.reason}
	case OutcomeBusy:
		v = map[string]string{"error": ErrBusy.Error()}
	default:
		v = map[string]string{"error": "internal error"}
	}
	b, _ := json.Marshal(v)
	return append(b, '\n')
}

func (h *Handler) log(r *http.Request, res result, name, delivery string) {
	logger := h.Logger
	if logger == nil {
		return
	}
	level := slog.LevelInfo
	switch res.outcome {
	case OutcomeUnauthorized, OutcomeBadRequest, OutcomeTooLarge, OutcomeBusy,
		OutcomeUnsupportedMediaType, OutcomeMethodNotAllowed:
		level = slog.LevelWarn
	case OutcomeError:
		level = slog.LevelError
	}
	ctx := r.Context()
	if !logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("delivery", clip(delivery)),
		slog.String("event", clip(name)),
		slog.String("outcome", res.outcome),
		slog.Int("status", res.status),
	}
	if res.event.Branch != "" {
		attrs = append(attrs, slog.String("branch", clip(res.event.Branch)), slog.String("kind", string(res.event.Kind)))
	}
	if res.event.PR != 0 {
		attrs = append(attrs, slog.Int("pr", res.event.PR))
	}
	if res.reason != "" {
		attrs = append(attrs, slog.String("reason", res.reason))
	}
	logger.LogAttrs(ctx, level, "webhook", attrs...)
}

// clip bounds untrusted values echoed into logs.
func clip(s string) string {
	if len(s) <= maxLogField {
		return s
	}
	return strings.ToValidUTF8(s[:maxLogField], "") + "…"
}

var knownEvents = map[string]bool{"push": true, "create": true, "delete": true, "pull_request": true, "ping": true}

// metricEvent keeps the Observe label set bounded: unauthenticated callers
// can put anything in X-GitHub-Event.
func metricEvent(name string, authed bool) string {
	if knownEvents[name] {
		return name
	}
	if authed && name != "" && len(name) <= 64 && isToken(name) {
		return name
	}
	return "unknown"
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// checkBranch rejects obviously bad branch names; deeper validation is later.
func checkBranch(what, b string) error {
	switch {
	case b == "":
		return errors.New(what + " is empty")
	case len(b) > maxBranchLen:
		return errors.New(what + " is too long")
	case !utf8.ValidString(b):
		return errors.New(what + " is not valid UTF-8")
	case hasControl(b):
		return errors.New(what + " contains control characters")
	}
	return nil
}
