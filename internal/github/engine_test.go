package github

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/offshoot-dev/offshoot/internal/engine"
)

// What a retry can fix is marked temporary; a 4xx and a refused body are not.
func TestClassify(t *testing.T) {
	netErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		err  error
		temp bool
	}{
		{&APIError{Op: "create pull request", StatusCode: 502}, true},
		{&APIError{Op: "create pull request", StatusCode: 429}, true},
		{&APIError{Op: "create pull request", StatusCode: 422, Message: "validation failed"}, false},
		{&APIError{Op: "set status", StatusCode: 404}, false},
		{&APIError{Op: "create pull request", Message: "body has 70000 characters"}, false},
		{&APIError{Op: "find pull request", Err: netErr}, true},
		{fmt.Errorf("wrapped: %w", &APIError{Op: "x", StatusCode: 503}), true},
	} {
		if got := engine.IsTemporary(classify(tc.err)); got != tc.temp {
			t.Errorf("classify(%v): temporary %v, want %v", tc.err, got, tc.temp)
		}
	}
	if classify(nil) != nil {
		t.Error("classify(nil) is not nil")
	}
}
