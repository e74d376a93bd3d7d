package gitcache

import (
	"errors"
	"testing"
)

func TestCheckTransport(t *testing.T) {
	for _, tc := range []struct {
		remote          string
		auth, allow, ok bool
	}{
		{"http://git.example.com/envs.git", true, false, false},
		{"http://user:tok@git.example.com/envs.git", false, false, false},
		{"http://git.example.com/envs.git", true, true, true},   // opted in
		{"http://git.example.com/envs.git", false, false, true}, // anonymous
		{"https://git.example.com/envs.git", true, false, true},
		{"http://127.0.0.1:8080/envs.git", true, false, true},
		{"http://127.9.9.9/envs.git", true, false, true},
		{"http://[::1]:8080/envs.git", true, false, true},
		{"http://localhost/envs.git", true, false, true},
		{"HTTP://10.0.0.1/envs.git", true, false, false},
		{"ssh://git@git.example.com/envs.git", true, false, true},
	} {
		err := CheckTransport(tc.remote, tc.auth, tc.allow)
		if (err == nil) != tc.ok {
			t.Errorf("CheckTransport(%q, auth=%v, allow=%v) = %v, want ok=%v", tc.remote, tc.auth, tc.allow, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInsecureCredentials) {
			t.Errorf("CheckTransport(%q): %v is not ErrInsecureCredentials", tc.remote, err)
		}
	}
}
