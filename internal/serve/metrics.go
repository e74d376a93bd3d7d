package serve

import "github.com/prometheus/client_golang/prometheus"

// Metrics are offshoot serve's Prometheus metrics.
type Metrics struct {
	Events           *prometheus.CounterVec // webhook requests by event and outcome
	Applied          *prometheus.CounterVec // queued events by source and outcome of their batch
	QueueDepth       prometheus.Gauge
	CommitSeconds    prometheus.Histogram
	ReconcileSeconds prometheus.Histogram
	Environments     prometheus.Gauge
	Failures         *prometheus.CounterVec // failed batches by class: temporary (retried) or terminal
}

// NewMetrics registers the metrics with reg (nil: a private registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offshoot_webhook_requests_total", Help: "Webhook requests by GitHub event and outcome.",
		}, []string{"event", "outcome"}),
		Applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offshoot_events_applied_total", Help: "Queued events by source and what became of them (applied, up_to_date, proposed, skipped, refused, retry, failed).",
		}, []string{"source", "outcome"}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "offshoot_queue_depth", Help: "Branches waiting to be applied.",
		}),
		CommitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "offshoot_commit_seconds", Help: "From taking a batch to its commit pushed.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		ReconcileSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "offshoot_reconcile_seconds", Help: "Duration of a reconcile.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		Environments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "offshoot_environments", Help: "Environments in the environments repo at the last reconcile.",
		}),
	}
	m.Failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "offshoot_batch_failures_total", Help: "Batches that failed, by class: temporary (retried with backoff) or terminal (reported, not retried).",
	}, []string{"class"})
	reg.MustRegister(m.Events, m.Applied, m.QueueDepth, m.CommitSeconds, m.ReconcileSeconds, m.Environments, m.Failures)
	return m
}
