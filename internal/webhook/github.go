package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The subset of GitHub's documented webhook payloads offshoot reads
// (https://docs.github.com/en/webhooks/webhook-events-and-payloads).

type ghRepo struct {
	ID       int64  `json:"id"`
	FullName string `json:"full_name"`
}

type ghPush struct {
	Ref     string `json:"ref"`
	Before  string `json:"before"`
	After   string `json:"after"`
	Created bool   `json:"created"`
	Deleted bool   `json:"deleted"`
}

// ghRefEvent is the create and delete payload; Ref is the short name.
type ghRefEvent struct {
	Ref     string `json:"ref"`
	RefType string `json:"ref_type"`
}

type ghPRRef struct {
	Ref  string  `json:"ref"`
	SHA  string  `json:"sha"`
	Repo *ghRepo `json:"repo"` // null when a fork was deleted
}

type ghPullRequest struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest *struct {
		Number int     `json:"number"`
		Merged bool    `json:"merged"`
		Head   ghPRRef `json:"head"`
		Base   ghPRRef `json:"base"`
		Labels []struct {
			Name string `json:"name"`
		} `json:"labels"`
	} `json:"pull_request"`
}

// mapEvent turns a verified payload into an Event (Delivery and Received are
// filled by the caller). A non-empty ignore says why nothing is to be done;
// err means the payload is malformed (400).
func mapEvent(name string, body []byte) (ev Event, ignore string, err error) {
	ev.Source = name
	switch name {
	case "push":
		return mapPush(ev, body)
	case "create", "delete":
		return mapRefEvent(ev, body)
	case "pull_request":
		return mapPullRequest(ev, body)
	default:
		return ev, "unsupported event " + clip(name), nil
	}
}

func decode(name string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("malformed %s payload: %v", name, err)
	}
	return nil
}

func mapPush(ev Event, body []byte) (Event, string, error) {
	var p ghPush
	if err := decode("push", body, &p); err != nil {
		return ev, "", err
	}
	branch, ok := strings.CutPrefix(p.Ref, "refs/heads/")
	switch {
	case p.Ref == "":
		return ev, "", errors.New("push payload has no ref")
	case strings.HasPrefix(p.Ref, "refs/tags/"):
		return ev, "tag", nil
	case !ok:
		return ev, "not a branch", nil
	}
	if err := checkBranch("branch", branch); err != nil {
		return ev, "", err
	}
	ev.Branch = branch
	if p.Deleted {
		ev.Kind = KindDelete
		return ev, "", nil
	}
	if !isSHA(p.After) {
		return ev, "", errors.New("push payload has no valid after commit")
	}
	ev.Kind, ev.SHA = KindSync, p.After
	return ev, "", nil
}

func mapRefEvent(ev Event, body []byte) (Event, string, error) {
	var p ghRefEvent
	if err := decode(ev.Source, body, &p); err != nil {
		return ev, "", err
	}
	switch p.RefType {
	case "branch":
	case "tag":
		return ev, "tag", nil
	case "":
		return ev, "", fmt.Errorf("%s payload has no ref_type", ev.Source)
	default:
		return ev, "ref_type " + clip(p.RefType), nil
	}
	if err := checkBranch("branch", p.Ref); err != nil {
		return ev, "", err
	}
	ev.Branch = p.Ref
	ev.Kind = KindSync
	if ev.Source == "delete" {
		ev.Kind = KindDelete
	}
	return ev, "", nil
}

func mapPullRequest(ev Event, body []byte) (Event, string, error) {
	var p ghPullRequest
	if err := decode("pull_request", body, &p); err != nil {
		return ev, "", err
	}
	if p.PullRequest == nil {
		return ev, "", errors.New("pull_request payload has no pull_request object")
	}
	pr := p.PullRequest
	switch p.Action {
	case "opened", "reopened", "synchronize", "labeled":
		ev.Kind = KindSync
	case "closed":
		ev.Kind = KindDelete
	case "":
		return ev, "", errors.New("pull_request payload has no action")
	default:
		return ev, "action " + clip(p.Action), nil
	}

	// A fork's head.ref names a branch in another repository; it must never
	// be built or torn down as ours. A deleted fork has head.repo null.
	// Checked before the head is validated: nothing from a fork matters.
	if pr.Base.Repo == nil || pr.Base.Repo.FullName == "" {
		return ev, "", errors.New("pull_request payload has no base repository")
	}
	if pr.Head.Repo == nil || !strings.EqualFold(pr.Head.Repo.FullName, pr.Base.Repo.FullName) {
		ev.PR = p.Number
		if checkBranch("", pr.Head.Ref) == nil {
			ev.Branch = pr.Head.Ref
		}
		return ev, "fork", nil
	}

	ev.PR = p.Number
	if ev.PR == 0 {
		ev.PR = pr.Number
	}
	if ev.PR <= 0 {
		return ev, "", errors.New("pull_request payload has no number")
	}
	if err := checkBranch("head ref", pr.Head.Ref); err != nil {
		return ev, "", err
	}
	if err := checkBranch("base ref", pr.Base.Ref); err != nil {
		return ev, "", err
	}
	ev.Branch, ev.Parent = pr.Head.Ref, pr.Base.Ref
	switch {
	case isSHA(pr.Head.SHA):
		ev.SHA = pr.Head.SHA
	case ev.Kind == KindSync || pr.Head.SHA != "":
		return ev, "", errors.New("pull_request payload has no valid head sha")
	}
	for _, l := range pr.Labels {
		if l.Name != "" {
			ev.Labels = append(ev.Labels, l.Name)
		}
	}
	return ev, "", nil
}

// isSHA accepts a non-zero hex object name (SHA-1 or SHA-256).
func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	zero := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '0':
		case c >= '1' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			zero = false
		default:
			return false
		}
	}
	return !zero
}
