package gitcache

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrInsecureCredentials: credentials would be sent over plain http:// to
// a host that is not this machine.
var ErrInsecureCredentials = errors.New("refusing to send credentials over plain http")

// CheckTransport refuses to use credentials (withAuth, or a user:password
// in the URL) on a plain http:// remote unless the host is loopback
// (127.0.0.0/8, ::1, localhost) or allowInsecure says the user chose it.
func CheckTransport(remote string, withAuth, allowInsecure bool) error {
	if allowInsecure || !strings.HasPrefix(strings.ToLower(remote), "http://") {
		return nil
	}
	u, err := url.Parse(remote)
	if err != nil {
		return fmt.Errorf("invalid URL %s: %w", Redact(remote), err)
	}
	if !withAuth && u.User == nil {
		return nil
	}
	if IsLoopback(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%w to %s: use https://, or set OFFSHOOT_ALLOW_INSECURE_HTTP=true if this network is trusted", ErrInsecureCredentials, u.Host)
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
