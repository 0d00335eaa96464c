// Package prom exposes llmscope's Prometheus metrics on a registry of its
// own (never the global default).
package prom

import (
	"fmt"
	"net/http"
	"slices"
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
	exportLeader   *prometheus.GaugeVec
	exportFailures *prometheus.CounterVec
	exportProblems *prometheus.CounterVec
	writeErrors    *prometheus.CounterVec
	attempts       *prometheus.CounterVec
	routeEvents    *prometheus.CounterVec
	genai          *genai
	collectors     []prometheus.Collector
}

// New registers llmscope's collectors, with Go runtime and process
// collectors, on a new registry. queueDepth reports the store queue's depth
// at scrape time. The model label keeps DefaultModelCap values; see NewCapped.
func New(queueDepth func() int) *Metrics { return NewCapped(queueDepth, DefaultModelCap) }

// NewCapped is New with a cap on distinct model label values.
func NewCapped(queueDepth func() int, modelCap int) *Metrics {
	reg := prometheus.NewRegistry()
	m := build(queueDepth, modelCap)
	m.reg = reg
	reg.MustRegister(m.collectors...)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Register registers llmscope's collectors (not the Go runtime ones, which a
// caller's registry usually has) on reg, for a program that serves its own
// registry. Handler is then not available.
func Register(reg prometheus.Registerer, queueDepth func() int, modelCap int) (*Metrics, error) {
	m := build(queueDepth, modelCap)
	for _, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("prom: register: %w", err)
		}
	}
	return m, nil
}

// Unregister removes the collectors Register added to reg.
func (m *Metrics) Unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors {
		reg.Unregister(c)
	}
}

func build(queueDepth func() int, modelCap int) *Metrics {
	m := &Metrics{
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
	m.exportLeader = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "llmscope_export_leader",
		Help: "1 while this gateway holds the exporter's lease in a shared store and exports, 0 while another gateway does.",
	}, []string{"exporter"})
	m.exportFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmscope_export_failures_total",
		Help: "Failed export attempts (the calls stay in the store and are retried).",
	}, []string{"exporter"})
	m.exportProblems = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmscope_export_problems_total",
		Help: "Items a remote system refused or answered oddly, by kind.",
	}, []string{"exporter", "kind"})
	m.writeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmscope_store_write_errors_total",
		Help: "Failed attempts to write calls to the store, by reason (the calls are retried).",
	}, []string{"reason"})
	for _, reason := range llmscope.WriteErrorReasons() {
		m.writeErrors.WithLabelValues(reason) // every reason shows, at 0
	}
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmscope_upstream_attempts_total",
		Help: "Upstream attempts of routed calls, by deployment and outcome (ok, status, timeout, connection, stream, broken, rejected, canceled).",
	}, []string{"upstream", "outcome"})
	m.routeEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmscope_route_events_total",
		Help: "Routing decisions, by route, deployment and kind: retry, failover, fallback, cooldown, recover.",
	}, []string{"route", "upstream", "kind"})
	m.genai = newGenAI(modelCap)
	m.collectors = append(m.genai.collectors(), m.costUnknown, m.dropped, m.exportLag, m.exportLeader, m.exportFailures, m.exportProblems,
		m.writeErrors, m.attempts, m.routeEvents,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "llmscope_store_queue_depth",
			Help: "Calls waiting to be committed to the store.",
		}, func() float64 { return float64(queueDepth()) }))
	return m
}

var _ llmscope.Sink = (*Metrics)(nil)

// Record updates the per-call metrics for c. It is cheap and does not
// allocate for label combinations seen before, so it runs on the request path.
func (m *Metrics) Record(c *llmscope.Call) {
	m.genai.record(c)
	for i := range c.Tries {
		// Deployment names come from the routes config: bounded.
		m.attempts.WithLabelValues(c.Tries[i].Upstream, c.Tries[i].Outcome).Inc()
	}
}

// RouteEvent counts one routing decision (package route's events): kind
// is retry, failover, fallback, cooldown or recover.
func (m *Metrics) RouteEvent(route, upstream, kind string) {
	m.routeEvents.WithLabelValues(route, upstream, kind).Inc()
}

// CostUnknown counts one call that could not be priced.
func (m *Metrics) CostUnknown() { m.costUnknown.Inc() }

// Dropped counts one call dropped for reason.
func (m *Metrics) Dropped(reason string) { m.dropped.WithLabelValues(reason).Inc() }

// StoreWriteError counts one failed store write with its reason (see
// llmscope.WriteErrorReason); a reason llmscope does not know counts as
// llmscope.WriteOther.
func (m *Metrics) StoreWriteError(reason string) {
	if !slices.Contains(llmscope.WriteErrorReasons(), reason) {
		reason = llmscope.WriteOther
	}
	m.writeErrors.WithLabelValues(reason).Inc()
}

// ExportLag sets an exporter's lag.
func (m *Metrics) ExportLag(exporter string, d time.Duration) {
	m.exportLag.WithLabelValues(exporter).Set(d.Seconds())
}

// ExportLeading sets whether this process exports for exporter (holds its
// lease).
func (m *Metrics) ExportLeading(exporter string, leading bool) {
	v := 0.0
	if leading {
		v = 1
	}
	m.exportLeader.WithLabelValues(exporter).Set(v)
}

// ExportFailure counts one failed export attempt.
func (m *Metrics) ExportFailure(exporter string) { m.exportFailures.WithLabelValues(exporter).Inc() }

// ExportProblem counts one refused or odd item.
func (m *Metrics) ExportProblem(exporter, kind string) {
	m.exportProblems.WithLabelValues(exporter, kind).Inc()
}

// Handler serves the metrics in Prometheus's text format; nil for Metrics
// made by Register.
func (m *Metrics) Handler() http.Handler {
	if m.reg == nil {
		return nil
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry, for callers that add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
