package generator

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"
)

// ArchiveTimeout is CloudNativePG's default archive_timeout: PostgreSQL
// switches to a new WAL segment (and the plugin archives the full one) at
// most this long after a write. WAL written at T can be in the archive
// only after T + ArchiveTimeout (+ the upload: ArchiveUploadMargin).
const (
	ArchiveTimeout      = 5 * time.Minute
	ArchiveUploadMargin = 30 * time.Second
)

// PointInTimeError is an --at that cannot be recovered to (now, or ever).
// Nothing is committed. It unwraps to a *UsageError (the request as given
// cannot succeed now); RetryAt is set when the same request will be
// accepted from that time on (the WAL past T is not archived yet).
type PointInTimeError struct {
	At      time.Time
	Reason  string
	RetryAt time.Time
}

func (e *PointInTimeError) Error() string {
	msg := fmt.Sprintf("point in time %s: %s", e.At.UTC().Format(time.RFC3339), e.Reason)
	if !e.RetryAt.IsZero() {
		msg += fmt.Sprintf("; retry at or after %s", e.RetryAt.UTC().Format(time.RFC3339))
	}
	return msg
}

// Unwrap makes errors.As(err, **UsageError) hold: the CLI reports it as a
// wrong invocation and commits nothing.
func (e *PointInTimeError) Unwrap() error { return &UsageError{Msg: e.Error()} }

// checkPointInTime checks the recovery target of a new incarnation (a
// create or a refresh with --at) against what the parent's archive can
// hold: not in the future, not so recent that the WAL past it cannot be
// archived yet, not before the parent's own incarnation began (its archive
// starts there), not older than the parent's backup retention. The rest
// (a base backup that ended at or before T, WAL past T) only the archive
// can tell: the clone guard Job checks it in the cluster.
func checkPointInTime(cfg *Config, repo fs.FS, env, prev *Environment, now time.Time) error {
	src := env.Database.Source
	if src == nil || src.TargetTime == nil {
		return nil
	}
	if prev != nil && prev.Database.Incarnation == env.Database.Incarnation {
		return nil // an existing incarnation: its target was checked when it was made
	}
	t := src.TargetTime.UTC()
	fail := func(retry time.Time, format string, args ...any) error {
		return &PointInTimeError{At: t, Reason: fmt.Sprintf(format, args...), RetryAt: retry}
	}
	if t.After(now) {
		return fail(time.Time{}, "is in the future (now %s): a clone can only recover to a time that has passed", now.Format(time.RFC3339))
	}
	if ready := t.Add(ArchiveTimeout + ArchiveUploadMargin); now.Before(ready) {
		return fail(ready.Truncate(time.Second).Add(time.Second),
			"is too recent: %s's WAL past it may not be archived yet (CloudNativePG's archive_timeout is %s)", src.Branch, ArchiveTimeout)
	}
	parent, err := ReadEnv(repo, env.ParentEnv)
	if err != nil && !errors.Is(err, ErrNoEnv) {
		return err
	}
	if parent != nil && parent.Database.ServerName == src.ServerName {
		if began := parent.Database.ClonedAt; !began.IsZero() && t.Before(began) {
			return fail(time.Time{}, "is before %s's database incarnation %s began (%s): its archive %s holds nothing older",
				src.Branch, parent.Database.Incarnation, began.UTC().Format(time.RFC3339), src.ServerName)
		}
	}
	if oldest, ok := retentionStart(cfg.Database.Backup.Retention, now); ok && t.Before(oldest) {
		return fail(time.Time{}, "is older than the backup retention (database.backup.retention %s: nothing before %s is kept)",
			cfg.Database.Backup.Retention, oldest.Format(time.RFC3339))
	}
	return nil
}

// retentionStart is the start of the recovery window of a Barman Cloud
// retentionPolicy ("7d", "2w", "3m": days, weeks, months).
func retentionStart(policy string, now time.Time) (time.Time, bool) {
	if len(policy) < 2 {
		return time.Time{}, false
	}
	n, err := strconv.Atoi(policy[:len(policy)-1])
	if err != nil || n < 1 {
		return time.Time{}, false
	}
	switch policy[len(policy)-1] {
	case 'd':
		return now.AddDate(0, 0, -n), true
	case 'w':
		return now.AddDate(0, 0, -7*n), true
	case 'm':
		return now.AddDate(0, -n, 0), true
	}
	return time.Time{}, false
}
