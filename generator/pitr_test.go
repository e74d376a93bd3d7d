package generator

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// --at is checked before anything is committed: a time the parent's
// archive cannot hold (now or ever) is refused with a PointInTimeError
// that says why (and when to retry, if it will work later).
func TestPointInTimeIsChecked(t *testing.T) {
	masterBegan := t0.Add(time.Minute) // demo: master is created at t0+1m
	for _, tc := range []struct {
		name      string
		op        Op
		at, now   time.Time
		want      string
		wantRetry time.Time
	}{
		{"future", OpSync, t0.Add(3 * time.Hour), t0.Add(2 * time.Hour), "is in the future", time.Time{}},
		{"WAL not archived yet", OpSync, t0.Add(2*time.Hour - 2*time.Minute), t0.Add(2 * time.Hour), "too recent",
			t0.Add(2*time.Hour - 2*time.Minute + ArchiveTimeout + ArchiveUploadMargin + time.Second)},
		{"before the parent's incarnation", OpSync, masterBegan.Add(-time.Second), t0.Add(2 * time.Hour), "before master's database incarnation", time.Time{}},
		{"six days before master existed (the old pitr golden)", OpSync, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), t0.Add(time.Hour), "before master's database incarnation", time.Time{}},
		{"older than retention", OpSync, t0.Add(time.Hour), t0.Add(8 * 24 * time.Hour), "older than the backup retention (database.backup.retention 7d", time.Time{}},
		{"refresh into the future", OpRefresh, t0.Add(3 * time.Hour), t0.Add(2 * time.Hour), "is in the future", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := demo(t)
			before := len(r.fs)
			branch, parent := "feature/PITR", "master"
			if tc.op == OpRefresh {
				branch, parent = "staging", ""
			}
			at := tc.at
			p, err := r.do(Request{Op: tc.op, Branch: branch, Parent: parent, SHA: "abcdef0", At: &at, Now: tc.now})
			var pe *PointInTimeError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a PointInTimeError containing %q, got %v (plan %+v)", tc.want, err, p)
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatal("a refused --at must also be a UsageError (exit code 2)")
			}
			if !pe.RetryAt.Equal(tc.wantRetry) {
				t.Fatalf("RetryAt = %v, want %v", pe.RetryAt, tc.wantRetry)
			}
			if !tc.wantRetry.IsZero() && !strings.Contains(err.Error(), "retry at or after "+tc.wantRetry.Format(time.RFC3339)) {
				t.Fatalf("the message must say when to retry: %v", err)
			}
			if len(r.fs) != before {
				t.Fatal("a refused --at changed the repo")
			}
		})
	}
	// Accepted: inside master's archive, old enough to be archived, within
	// retention; and a later sync of the same env (a new SHA) is not
	// checked again, however old its target has become.
	r := demo(t)
	at := masterBegan.Add(10 * time.Minute)
	r.must(Request{Op: OpSync, Branch: "feature/PITR", Parent: "master", SHA: "abcdef0", At: &at, Now: at.Add(ArchiveTimeout + ArchiveUploadMargin)})
	r.must(Request{Op: OpSync, Branch: "feature/PITR", SHA: "abcdef1", Now: at.Add(30 * 24 * time.Hour)})
}

func TestRetentionStart(t *testing.T) {
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	for policy, want := range map[string]time.Time{
		"7d": time.Date(2026, 3, 24, 12, 0, 0, 0, time.UTC),
		"2w": time.Date(2026, 3, 17, 12, 0, 0, 0, time.UTC),
		"1m": time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC), // Go's AddDate normalises Feb 31
	} {
		if got, ok := retentionStart(policy, now); !ok || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", policy, got, ok, want)
		}
	}
	if _, ok := retentionStart("x", now); ok {
		t.Error("an invalid policy has no window")
	}
}
