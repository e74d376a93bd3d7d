package bench

import (
	"sort"
	"time"
)

// Stats summarises latencies.
type Stats struct {
	N             int
	P50, P95, Max time.Duration
}

// Summarise computes nearest-rank percentiles.
func Summarise(d []time.Duration) Stats {
	if len(d) == 0 {
		return Stats{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	pct := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(s) {
			i = len(s) - 1
		}
		return s[i]
	}
	return Stats{N: len(s), P50: pct(0.50), P95: pct(0.95), Max: s[len(s)-1]}
}
