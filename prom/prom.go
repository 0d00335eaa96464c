// Package prom exposes llmscope's Prometheus metrics on a registry of its
// own (never the global default).
package prom

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"llmscope"
)

// Metrics holds llmscope's collectors.
type Metrics struct {
	reg            *prometheus.Registry
	costUnknown    prometheus.Counter
	dropped        *prometheus.CounterVec
	exportLag      *prometheus.GaugeVec
	exportFailures *prometheus.CounterVec
	exportProblems *prometheus.CounterVec
	genai          *genai
}

// New registers llmscope's collectors, with Go runtime and process
// collectors, on a new registry. queueDepth reports the store queue's depth
// at scrape time. The model label keeps DefaultModelCap values; see NewCapped.
func New(queueDepth func() int) *Metrics { return NewCapped(queueDepth, DefaultModelCap) }

// NewCapped is New with a cap on distinct model label values.
func NewCapped(queueDepth func() int, modelCap int) *Metrics {
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
	m.exportLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "llmscope_export_lag_seconds",
		Help: "Age of the oldest call an exporter has not delivered yet (0 when caught up).",
	}, []string{"exporter"})
	m.exportFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmscope_export_failures_total",
		Help: "Failed export attempts (the calls stay in the store and are retried).",
	}, []string{"exporter"})
	m.exportProblems = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmscope_export_problems_total",
		Help: "Items a remote system refused or answered oddly, by kind.",
	}, []string{"exporter", "kind"})
	m.genai = newGenAI(modelCap)
	reg.MustRegister(m.genai.collectors()...)
	reg.MustRegister(m.costUnknown, m.dropped, m.exportLag, m.exportFailures, m.exportProblems,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "llmscope_store_queue_depth",
			Help: "Calls waiting to be committed to the store.",
		}, func() float64 { return float64(queueDepth()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

var _ llmscope.Sink = (*Metrics)(nil)

// Record updates the per-call metrics for c. It is cheap and does not
// allocate for label combinations seen before, so it runs on the request path.
func (m *Metrics) Record(c *llmscope.Call) { m.genai.record(c) }

// CostUnknown counts one call that could not be priced.
func (m *Metrics) CostUnknown() { m.costUnknown.Inc() }

// Dropped counts one call dropped for reason.
func (m *Metrics) Dropped(reason string) { m.dropped.WithLabelValues(reason).Inc() }

// ExportLag sets an exporter's lag.
func (m *Metrics) ExportLag(exporter string, d time.Duration) {
	m.exportLag.WithLabelValues(exporter).Set(d.Seconds())
}

// ExportFailure counts one failed export attempt.
func (m *Metrics) ExportFailure(exporter string) { m.exportFailures.WithLabelValues(exporter).Inc() }

// ExportProblem counts one refused or odd item.
func (m *Metrics) ExportProblem(exporter, kind string) {
	m.exportProblems.WithLabelValues(exporter, kind).Inc()
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry, for callers that add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
