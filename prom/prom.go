// Package prom exposes llmscope's Prometheus metrics on a registry of its
// own (never the global default).
package prom

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds llmscope's collectors.
type Metrics struct {
	reg         *prometheus.Registry
	costUnknown prometheus.Counter
	dropped     *prometheus.CounterVec
}

// New registers llmscope's collectors, with Go runtime and process
// collectors, on a new registry. queueDepth reports the store queue's depth
// at scrape time.
func New(queueDepth func() int) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		costUnknown: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llmscope_cost_unknown_total",
			Help: "Calls whose model has no known price (their cost is null).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmscope_dropped_total",
			Help: "Calls dropped before reaching the store, by reason.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.costUnknown, m.dropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "llmscope_store_queue_depth",
			Help: "Calls waiting to be committed to the store.",
		}, func() float64 { return float64(queueDepth()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// CostUnknown counts one call that could not be priced.
func (m *Metrics) CostUnknown() { m.costUnknown.Inc() }

// Dropped counts one call dropped for reason.
func (m *Metrics) Dropped(reason string) { m.dropped.WithLabelValues(reason).Inc() }

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry, for callers that add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
