package argocd

import (
	"reflect"
	"testing"
)

func TestNormaliseServer(t *testing.T) {
	for in, want := range map[string]struct {
		server string
		plain  bool
	}{
		"argocd.example.com":          {"argocd.example.com", false},
		"https://argocd.example.com/": {"argocd.example.com", false},
		"http://127.0.0.1:8080":       {"127.0.0.1:8080", true},
		" 127.0.0.1:8080/ ":           {"127.0.0.1:8080", false},
	} {
		s, p, err := NormaliseServer(in)
		if err != nil || s != want.server || p != want.plain {
			t.Errorf("NormaliseServer(%q) = %q, %v, %v", in, s, p, err)
		}
	}
	for _, bad := range []string{"", "ftp://x", "http://"} {
		if _, _, err := NormaliseServer(bad); err == nil {
			t.Errorf("NormaliseServer(%q): no error", bad)
		}
	}
}

func TestWorkloadImages(t *testing.T) {
	live := `{"kind":"Deployment","spec":{"template":{"spec":{"initContainers":[{"name":"migrate","image":"ghcr.io/acme/shop:7a8b9c0"}],"containers":[{"name":"app","image":"ghcr.io/acme/shop:7a8b9c0"},{"name":"proxy","image":"envoy:v1"}]}}}}`
	got := WorkloadImages("Deployment", live)
	if !reflect.DeepEqual(got, []string{"ghcr.io/acme/shop:7a8b9c0", "ghcr.io/acme/shop:7a8b9c0", "envoy:v1"}) {
		t.Errorf("WorkloadImages = %v", got)
	}
	for _, c := range []struct{ kind, live string }{{"Service", live}, {"Deployment", "null"}, {"Deployment", ""}, {"StatefulSet", "{"}} {
		if got := WorkloadImages(c.kind, c.live); got != nil {
			t.Errorf("WorkloadImages(%s, %q) = %v", c.kind, c.live, got)
		}
	}
}
