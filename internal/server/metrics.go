package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the BFF's Prometheus metrics, served on the admin listener.
// A nil *Metrics records nothing.
type Metrics struct {
	Requests       *prometheus.CounterVec
	Latency        *prometheus.HistogramVec
	Sessions       *prometheus.CounterVec
	Refreshes      *prometheus.CounterVec
	UpstreamErrors prometheus.Counter
	StoreErrors    prometheus.Counter
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_http_requests_total", Help: "HTTP requests by method and status code.",
		}, []string{"method", "code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bff_http_request_duration_seconds", Help: "HTTP request latency.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method"}),
		Sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_sessions_total", Help: "Sessions started and ended, by event.",
		}, []string{"event"}),
		Refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_token_refreshes_total", Help: "Access-token refreshes by outcome.",
		}, []string{"outcome"}),
		UpstreamErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bff_proxy_upstream_errors_total", Help: "Proxied requests that failed at the upstream (502/504).",
		}),
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bff_session_store_errors_total", Help: "Requests answered 503 because the session store was unavailable.",
		}),
	}
	reg.MustRegister(m.Requests, m.Latency, m.Sessions, m.Refreshes, m.UpstreamErrors, m.StoreErrors)
	return m
}

func (m *Metrics) observeRequest(r *http.Request, status int, d time.Duration) {
	method := methodLabel(r.Method)
	m.Requests.WithLabelValues(method, strconv.Itoa(status)).Inc()
	m.Latency.WithLabelValues(method).Observe(d.Seconds())
}

// methodLabel maps the client's method to a fixed set, so that nobody can
// grow the metrics without bound with made-up methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

func (m *Metrics) sessionStarted() {
	if m != nil {
		m.Sessions.WithLabelValues("started").Inc()
	}
}

func (m *Metrics) sessionEnded(reason string) { m.sessionEndedN(reason, 1) }

func (m *Metrics) sessionEndedN(reason string, n int) {
	if m != nil && n > 0 {
		m.Sessions.WithLabelValues("ended_" + reason).Add(float64(n))
	}
}

func (m *Metrics) refreshed(outcome string) {
	if m != nil {
		m.Refreshes.WithLabelValues(outcome).Inc()
	}
}
