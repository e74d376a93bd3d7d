package apprepo

import (
	"regexp"

	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// defaultWalkLimit bounds every ancestry walk: the history window behind
// the new branch's head, and each candidate's own commits outside that
// window. A candidate whose merge base lies beyond it is treated as
// unrelated.
const defaultWalkLimit = 10000

// Candidate is an existing environment: its branch and the SHA it runs
// (the engine's type).
type Candidate = engine.Candidate

var _ engine.AppRepo = (*Repo)(nil)

// DetectParent is Nearest as the engine asks for it (engine.AppRepo).
func (r *Repo) DetectParent(ctx context.Context, branch, head string, candidates []Candidate, root string) (engine.Choice, error) {
	c, err := r.Nearest(ctx, branch, head, candidates, root)
	if err != nil {
		return engine.Choice{}, err
	}
	return engine.Choice{Parent: c.Parent, Reason: c.Reason}, nil
}

// abbrevPattern is an abbreviated commit SHA, as `offshoot sync --sha`
// accepts (7 to 39 hex digits).
var abbrevPattern = regexp.MustCompile(`^[0-9a-fA-F]{7,39}$`)

// Choice is the parent Nearest picked, and why.
type Choice struct {
	// Parent is the chosen candidate's branch.
	Parent string
	// Behind counts the commits on the new branch's head not reachable from
	// the merge base with the parent (git rev-list --count base..head).
	Behind int
	// Ahead counts the parent's commits not reachable from the merge base
	// (0 when the parent's SHA is an ancestor of the new branch's head).
	Ahead int
	// MergeBase is the merge base of the head and the parent's SHA.
	MergeBase string
	// Reason is human readable, for logs and metadata.
	Reason string
}

// Nearest picks, among candidates, the parent of branch whose head is
// head: the candidate whose merge base with head is nearest to head (fewest
// commits on head not reachable from it). Ties go to the candidate whose own
// SHA is nearest that merge base (one that is an ancestor of head beats one
// that moved on), then to root, then to the lexically smallest branch. The
// branch itself is never a candidate; an abbreviated candidate SHA is
// resolved in the app repo; candidates with no common history, whose
// commit is unknown even after a fetch, or whose abbreviated SHA is
// ambiguous are ignored; if none is
// left the error wraps ErrNoParent. The cached clone is fetched first when
// head or a candidate's SHA is not in it.
func (r *Repo) Nearest(ctx context.Context, branch, head string, candidates []Candidate, root string) (Choice, error) {
	if !plumbing.IsHash(head) {
		return Choice{}, fmt.Errorf("detect parent of %s: head %q is not a commit SHA", branch, head)
	}
	var cands []Candidate
	for _, c := range candidates {
		if c.Branch == branch {
			continue
		}
		if !plumbing.IsHash(c.SHA) && !abbrevPattern.MatchString(c.SHA) {
			return Choice{}, fmt.Errorf("detect parent of %s: candidate %s has SHA %q, not a commit SHA", branch, c.Branch, c.SHA)
		}
		c.SHA = strings.ToLower(c.SHA)
		cands = append(cands, c)
	}
	var ignored []string
	head = strings.ToLower(head)
	release, err := r.acquire(ctx)
	if err != nil {
		return Choice{}, err
	}
	defer release()

	have := func(sha string) bool {
		if !plumbing.IsHash(sha) {
			_, err := r.resolveAbbrev(sha)
			return err == nil
		}
		_, err := object.GetCommit(r.repo.Storer, plumbing.NewHash(sha))
		return err == nil
	}
	missing := !have(head)
	for _, c := range cands {
		if !missing && !have(c.SHA) {
			missing = true
		}
	}
	if missing {
		if err := r.fetch(ctx); err != nil && !errors.Is(err, ErrNoBranches) {
			return Choice{}, fmt.Errorf("detect parent of %s: %w", branch, err)
		}
		if !have(head) {
			return Choice{}, fmt.Errorf("detect parent of %s: commit %s is not in %s", branch, head, redact(r.remote))
		}
	}
	// Abbreviated SHAs (an environment synced with a short --sha) are
	// resolved to the one commit they name; an unknown or ambiguous one is
	// ignored, as an unknown full SHA is.
	resolved := cands[:0]
	for _, c := range cands {
		if !plumbing.IsHash(c.SHA) {
			full, err := r.resolveAbbrev(c.SHA)
			if err != nil {
				ignored = append(ignored, c.Branch+" ("+err.Error()+")")
				continue
			}
			c.SHA = full
		}
		resolved = append(resolved, c)
	}
	cands = resolved

	w := &walker{r: r, limit: r.walkLimit, outer: map[plumbing.Hash][]plumbing.Hash{}, anc: map[plumbing.Hash]map[plumbing.Hash]struct{}{}}
	if err := w.window(ctx, plumbing.NewHash(head)); err != nil {
		return Choice{}, fmt.Errorf("detect parent of %s: %w", branch, err)
	}
	type scored struct {
		Candidate
		behind, ahead int
		base          plumbing.Hash
	}
	var (
		ok   []scored
		memo = map[string]*scored{}
	)
	for _, c := range cands {
		if s, seen := memo[c.SHA]; seen {
			if s != nil && s.behind == 0 && s.ahead > 0 {
				ignored = append(ignored, c.Branch+" (cut from "+branch+")")
			} else if s != nil {
				ok = append(ok, scored{Candidate: c, behind: s.behind, ahead: s.ahead, base: s.base})
			} else {
				ignored = append(ignored, c.Branch+" (no common history)")
			}
			continue
		}
		if !have(c.SHA) {
			ignored = append(ignored, c.Branch+" (commit "+short(c.SHA)+" not found)")
			continue
		}
		base, behind, ahead, related, err := w.score(ctx, plumbing.NewHash(c.SHA))
		if err != nil {
			return Choice{}, fmt.Errorf("detect parent of %s: candidate %s: %w", branch, c.Branch, err)
		}
		if !related {
			memo[c.SHA] = nil
			ignored = append(ignored, c.Branch+" (no common history)")
			continue
		}
		s := scored{Candidate: c, behind: behind, ahead: ahead, base: base}
		memo[c.SHA] = &s
		if behind == 0 && ahead > 0 {
			// A strict descendant of head was cut from this branch, not
			// the other way round: never its parent (no loops).
			ignored = append(ignored, c.Branch+" (cut from "+branch+")")
			continue
		}
		ok = append(ok, s)
	}
	if len(ok) == 0 {
		msg := "no candidates"
		if len(ignored) > 0 {
			msg = "ignored " + strings.Join(ignored, ", ")
		}
		return Choice{}, fmt.Errorf("%w for %s at %s: %s", ErrNoParent, branch, short(head), msg)
	}
	slices.SortStableFunc(ok, func(a, b scored) int {
		if c := cmp.Compare(a.behind, b.behind); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ahead, b.ahead); c != 0 {
			return c
		}
		if ar, br := root != "" && a.Branch == root, root != "" && b.Branch == root; ar != br {
			if ar {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Branch, b.Branch)
	})
	best := ok[0]
	reason := fmt.Sprintf("%s: %s behind %s's head (merge base %s", best.Branch, commits(best.behind), branch, short(best.base.String()))
	if best.ahead == 0 {
		reason += fmt.Sprintf(", which %s's environment runs)", best.Branch)
	} else {
		reason += fmt.Sprintf("; %s's environment is %s past it)", best.Branch, commits(best.ahead))
	}
	if len(ok) > 1 {
		nb := ok[1]
		reason += fmt.Sprintf("; next best %s: %s behind, %s past", nb.Branch, commits(nb.behind), commits(nb.ahead))
		if nb.behind == best.behind && nb.ahead == best.ahead {
			if root != "" && best.Branch == root {
				reason += ", tie goes to the root branch"
			} else {
				reason += ", tie goes to the smaller name"
			}
		}
	}
	if len(ignored) > 0 {
		reason += "; ignored " + strings.Join(ignored, ", ")
	}
	return Choice{Parent: best.Branch, Behind: best.behind, Ahead: best.ahead, MergeBase: best.base.String(), Reason: reason}, nil
}

// resolveAbbrev is the full SHA of the one commit whose SHA starts with
// abbrev.
func (r *Repo) resolveAbbrev(abbrev string) (string, error) {
	var found []plumbing.Hash
	iter, err := r.repo.CommitObjects()
	if err != nil {
		return "", err
	}
	defer iter.Close()
	err = iter.ForEach(func(c *object.Commit) error {
		if strings.HasPrefix(c.Hash.String(), abbrev) {
			found = append(found, c.Hash)
			if len(found) > 1 {
				return storer.ErrStop
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return "", err
	case len(found) == 0:
		return "", fmt.Errorf("commit %s not found", abbrev)
	case len(found) > 1:
		return "", fmt.Errorf("commit %s is ambiguous", abbrev)
	}
	return found[0].String(), nil
}

func commits(n int) string {
	if n == 1 {
		return "1 commit"
	}
	return fmt.Sprintf("%d commits", n)
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// walker computes ancestry for one DetectParent call, memoising commits it
// has read and ancestor sets it has built.
//
// The window W is the first limit commits reachable from the head
// (breadth first), with their parents kept in memory. When the head's whole
// history fits, W is all of it and every answer is exact git semantics;
// otherwise answers are computed within W.
type walker struct {
	r     *Repo
	limit int
	w     map[plumbing.Hash][]plumbing.Hash // the window: commit → parents
	outer map[plumbing.Hash][]plumbing.Hash // commits read outside the window
	anc   map[plumbing.Hash]map[plumbing.Hash]struct{}
	reads int
}

func (w *walker) parents(ctx context.Context, h plumbing.Hash) ([]plumbing.Hash, error) {
	if w.reads%256 == 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	w.reads++
	c, err := object.GetCommit(w.r.repo.Storer, h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	return c.ParentHashes, nil
}

// window walks the head's history breadth first into w.w.
func (w *walker) window(ctx context.Context, head plumbing.Hash) error {
	w.w = map[plumbing.Hash][]plumbing.Hash{}
	seen := map[plumbing.Hash]bool{head: true}
	queue := []plumbing.Hash{head}
	for len(queue) > 0 && len(w.w) < w.limit {
		h := queue[0]
		queue = queue[1:]
		ps, err := w.parents(ctx, h)
		if err != nil {
			return err
		}
		w.w[h] = ps
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return nil
}

// ancestors is the set of commits reachable from the given ones without
// leaving the window (the given ones included when in the window).
func (w *walker) ancestors(from ...plumbing.Hash) map[plumbing.Hash]struct{} {
	if len(from) == 1 {
		if a, ok := w.anc[from[0]]; ok {
			return a
		}
	}
	set := map[plumbing.Hash]struct{}{}
	var stack []plumbing.Hash
	for _, h := range from {
		if _, in := w.w[h]; in {
			if _, dup := set[h]; !dup {
				set[h] = struct{}{}
				stack = append(stack, h)
			}
		}
	}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range w.w[h] {
			if _, in := w.w[p]; !in {
				continue
			}
			if _, dup := set[p]; !dup {
				set[p] = struct{}{}
				stack = append(stack, p)
			}
		}
	}
	if len(from) == 1 {
		w.anc[from[0]] = set
	}
	return set
}

// score relates candidate c to the head: its best merge base, how many of
// the head's commits are not reachable from it (behind), how many of c's
// commits are not reachable from it (ahead). related is false when c shares
// no history with the head within the limits.
func (w *walker) score(ctx context.Context, c plumbing.Hash) (base plumbing.Hash, behind, ahead int, related bool, err error) {
	// Walk c's history down to the window: the window commits met first
	// (the frontier) include every merge base.
	var frontier []plumbing.Hash
	outside := 0
	seen := map[plumbing.Hash]bool{c: true}
	queue := []plumbing.Hash{c}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if _, in := w.w[h]; in {
			frontier = append(frontier, h)
			continue
		}
		outside++
		if outside > w.limit {
			return base, 0, 0, false, nil
		}
		ps, ok := w.outer[h]
		if !ok {
			if ps, err = w.parents(ctx, h); err != nil {
				return base, 0, 0, false, err
			}
			w.outer[h] = ps
		}
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	if len(frontier) == 0 {
		return base, 0, 0, false, nil
	}
	// The merge base nearest the head is the frontier commit reaching the
	// most of the window (a commit beats all of its own ancestors).
	best := -1
	for _, f := range frontier {
		n := len(w.ancestors(f))
		if n > best || (n == best && f.String() < base.String()) {
			best, base = n, f
		}
	}
	behind = len(w.w) - best
	ahead = outside
	if len(frontier) > 1 {
		// Window commits c reaches that the merge base does not (criss-cross
		// histories) are ahead of it too.
		baseAnc := w.ancestors(base)
		for h := range w.ancestors(frontier...) {
			if _, in := baseAnc[h]; !in {
				ahead++
			}
		}
	}
	return base, behind, ahead, true, nil
}
