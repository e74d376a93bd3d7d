package engine_test

import (
	"context"
	"testing"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/engine"
)

// handle runs requests as one batch through the one use case.
func handle(eng *engine.Engine, reqs ...generator.Request) (*engine.Outcome, error) {
	in := make([]engine.Request, len(reqs))
	for i, r := range reqs {
		in[i] = engine.Request{Request: r, Source: "test"}
	}
	return eng.Handle(context.Background(), in)
}

// apply is a batch of one; a refused request is its error.
func apply(eng *engine.Engine, req generator.Request) (*engine.Item, error) {
	out, err := handle(eng, req)
	if err != nil {
		return nil, err
	}
	return &out.Items[0], out.Items[0].Err
}

// propose is a batch of one in pull-request mode.
func propose(t *testing.T, eng *engine.Engine, rv engine.Reviewer, req generator.Request) (*engine.ReviewOutcome, error) {
	t.Helper()
	prs, mode, review := eng.PRs, eng.Mode, eng.Review
	defer func() { eng.PRs, eng.Mode, eng.Review = prs, mode, review }()
	eng.PRs, eng.Mode = rv, generator.ModePR
	if eng.Review == nil {
		eng.Review = eng.Repo.(engine.ReviewRepo)
	}
	it, err := apply(eng, req)
	if err != nil {
		return nil, err
	}
	return it.Review, nil
}
