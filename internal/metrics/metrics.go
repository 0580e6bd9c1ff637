// Package metrics defines rcslaunch's Prometheus metrics. Two kinds:
//
//   - fleet metrics, read from Redis at scrape time, so that any process
//     (serve, or a worker on METRICS_ADDR) reports the same figures for the
//     whole fleet: launches by outcome and code (counted in the same script
//     that records each outcome, so they equal the outcomes exactly),
//     dead-letter store size, results stream length, the account's limits,
//     and asynq's queue metrics;
//   - process metrics, kept by each worker: Kaleyra call latency, attempts
//     per finished job, limiter waits and calls in flight.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rcslaunch/rcslaunch/internal/limits"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

const namespace = "rcslaunch"

// Worker is the metrics one worker process keeps.
type Worker struct {
	// CallDuration is the latency of Kaleyra launch calls, by outcome class.
	CallDuration *prometheus.HistogramVec
	// Calls counts Kaleyra launch calls by account (see SID), class and code.
	Calls *prometheus.CounterVec
	// Attempts is the attempts a job took, observed when it finishes.
	Attempts prometheus.Histogram
	// LimiterWait is how long jobs waited in the process for a launch slot.
	LimiterWait prometheus.Histogram
	// Deferred counts jobs handed back to the queue by the limiter, by
	// account (see SID) and reason.
	Deferred *prometheus.CounterVec
	// InFlight is this process's launch calls in flight.
	InFlight prometheus.Gauge
	// StatusPolls counts launch status polls by result: the launch state
	// answered, "failed" (a bad answer or none; polled again at the next
	// interval) or "throttled".
	StatusPolls *prometheus.CounterVec
	// LaunchStateChanges counts followed launches reaching a state, by state.
	LaunchStateChanges *prometheus.CounterVec

	sids sidLabels
}

// MaxSIDLabels bounds the distinct values of a process's sid label: the
// accounts seen first keep their own, later ones share OtherSID, so that a
// fleet of many accounts cannot make a scrape unbounded.
const MaxSIDLabels = 500

// OtherSID is the sid label of the accounts beyond MaxSIDLabels.
const OtherSID = "other"

// sidLabels hands out sid label values, at most MaxSIDLabels distinct.
type sidLabels struct {
	mu   sync.Mutex
	seen map[string]bool
}

// SID returns the sid label value of an account.
func (m *Worker) SID(sid string) string {
	l := &m.sids
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[sid] {
		return sid
	}
	if len(l.seen) >= MaxSIDLabels {
		return OtherSID
	}
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	l.seen[sid] = true
	return sid
}

// NewWorker makes the process metrics and registers them on reg.
func NewWorker(reg prometheus.Registerer) *Worker {
	m := &Worker{
		CallDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "kaleyra_call_duration_seconds",
			Help:    "Latency of Kaleyra launch calls, by outcome class.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"class"}),
		Calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "kaleyra_calls_total",
			Help: "Kaleyra launch calls made by this process, by account, outcome class and code.",
		}, []string{"sid", "class", "code"}),
		Attempts: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "job_attempts",
			Help:    "Attempts a job took, observed when it finishes (succeeded or dead-lettered).",
			Buckets: []float64{1, 2, 3, 4, 5, 6, 8, 10, 15, 20},
		}),
		LimiterWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "limiter_wait_seconds",
			Help:    "Time jobs waited in the worker for a launch slot (rate, in-flight cap).",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2},
		}),
		Deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "limiter_deferrals_total",
			Help: "Jobs handed back to the queue by the limiter (not attempts), by account and reason: rate, in_flight, cool_off.",
		}, []string{"sid", "reason"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "process_inflight_calls",
			Help: "Kaleyra launch calls in flight from this process.",
		}),
		StatusPolls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "launch_status_polls_total",
			Help: "Launch status polls made by this process (FOLLOW_LAUNCH), by result: a launch state, failed or throttled.",
		}, []string{"result"}),
		LaunchStateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "launch_state_changes_total",
			Help: "Followed launches that this process saw reach a new launch state, by state.",
		}, []string{"state"}),
	}
	reg.MustRegister(m.CallDuration, m.Calls, m.Attempts, m.LimiterWait, m.Deferred, m.InFlight,
		m.StatusPolls, m.LaunchStateChanges)
	return m
}

// Fleet reads fleet-wide figures from Redis when scraped.
type Fleet struct {
	store   *store.Store
	limiter *limits.Limiter
	sids    func() []string
}

var (
	launchesDesc = prometheus.NewDesc(namespace+"_launches_total",
		"Finished launch jobs over the whole fleet, by outcome (succeeded, dead_lettered) and last code.",
		[]string{"outcome", "code"}, nil)
	deadLettersDesc = prometheus.NewDesc(namespace+"_dead_letters",
		"Dead letters in the dead-letter store.", nil, nil)
	resultsDesc = prometheus.NewDesc(namespace+"_results_stream_length",
		"Entries in the results stream.", nil, nil)
	rateDesc = prometheus.NewDesc(namespace+"_effective_rate",
		"Launch calls per second the account may make now (lowered by HTTP 429 throttling).", []string{"sid"}, nil)
	inFlightDesc = prometheus.NewDesc(namespace+"_inflight_calls",
		"Launch calls holding an in-flight slot over the whole fleet.", []string{"sid"}, nil)
	coolOffDesc = prometheus.NewDesc(namespace+"_cooloff",
		"1 while the account is in cool-off after piled-up RCS502 answers, else 0.", []string{"sid"}, nil)
	coolOffLeftDesc = prometheus.NewDesc(namespace+"_cooloff_remaining_seconds",
		"Time left in the account's cool-off.", []string{"sid"}, nil)
	scrapeErrDesc = prometheus.NewDesc(namespace+"_scrape_error",
		"1 when the last scrape could not read Redis.", nil, nil)
)

// Describe implements prometheus.Collector.
func (f *Fleet) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{launchesDesc, deadLettersDesc, resultsDesc, rateDesc, inFlightDesc, coolOffDesc, coolOffLeftDesc, scrapeErrDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (f *Fleet) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	failed := 0.0
	if outcomes, err := f.store.Outcomes(ctx); err == nil {
		for k, n := range outcomes {
			ch <- prometheus.MustNewConstMetric(launchesDesc, prometheus.CounterValue, float64(n), k.Outcome, k.Code)
		}
	} else {
		failed = 1
	}
	if n, err := f.store.CountDeadLetters(ctx, store.Filter{}); err == nil {
		ch <- prometheus.MustNewConstMetric(deadLettersDesc, prometheus.GaugeValue, float64(n))
	} else {
		failed = 1
	}
	if n, err := f.store.ResultsLen(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(resultsDesc, prometheus.GaugeValue, float64(n))
	} else {
		failed = 1
	}
	for _, sid := range f.sids() {
		st, err := f.limiter.State(ctx, sid)
		if err != nil {
			failed = 1
			continue
		}
		cool := 0.0
		if st.CoolOff > 0 {
			cool = 1
		}
		ch <- prometheus.MustNewConstMetric(rateDesc, prometheus.GaugeValue, st.EffectiveRate, sid)
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(st.InFlight), sid)
		ch <- prometheus.MustNewConstMetric(coolOffDesc, prometheus.GaugeValue, cool, sid)
		ch <- prometheus.MustNewConstMetric(coolOffLeftDesc, prometheus.GaugeValue, st.CoolOff.Seconds(), sid)
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, failed)
}

// RegisterFleet registers the fleet metrics for the accounts sids, asynq's
// queue metrics, and the Go runtime's, on reg.
func RegisterFleet(reg prometheus.Registerer, st *store.Store, lim *limits.Limiter, sids func() []string, inspector *asynq.Inspector) {
	reg.MustRegister(
		&Fleet{store: st, limiter: lim, sids: sids},
		asynqmetrics.NewQueueMetricsCollector(inspector),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
}

// Handler serves reg's metrics in Prometheus's text format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
