package timings

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Durations are one realm's histograms of domain events.
type Durations struct {
	ceremony *prometheus.HistogramVec // ceremony, outcome
	decision *prometheus.HistogramVec // action, effect
	command  *prometheus.HistogramVec // outcome
	transfer *prometheus.HistogramVec // kind, outcome

	actions *Labels
}

// Labels bounds the values of one label: the first max distinct values
// pass, every later one is "other", so that a label named from input can
// never grow a metric without bound.
type Labels struct {
	mu   sync.Mutex
	seen map[string]bool
	max  int
}

// NewLabels bounds a label to max values besides "other".
func NewLabels(max int) *Labels { return &Labels{seen: map[string]bool{}, max: max} }

// Value is v, or "other" once max other values were seen.
func (l *Labels) Value(v string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.seen[v] {
		if len(l.seen) >= l.max {
			return "other"
		}
		l.seen[v] = true
	}
	return v
}

// maxActions bounds the action label of decisions: the realm asks the
// policies about a fixed vocabulary of actions far below it, so the bound
// only keeps a future action named from input from growing the metric.
const maxActions = 64

// New makes the histograms and registers them with reg.
func New(reg prometheus.Registerer) *Durations {
	d := &Durations{
		ceremony: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zerorealm_ceremony_finish_duration_seconds",
			Help: "Time to finish a passkey ceremony on the realm's side (verify the authenticator's answer, update the avatar, start the session), by ceremony (registration, sign-in, step-up) and outcome (ok, refused).",
			// A store round trip or two: milliseconds, more under load.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"ceremony", "outcome"}),
		decision: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zerorealm_policy_decision_duration_seconds",
			Help: "Time to evaluate a scene's Cedar policies for one request, by action and effect (allow, deny).",
			// Tens of microseconds for the built-in scenes.
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05},
		}, []string{"action", "effect"}),
		command: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zerorealm_twin_command_duration_seconds",
			Help:    "Time from the realm signing a twin command's grant to the gateway's verified acknowledgement, by outcome (the gateway's result: done, refused, failed; or undelivered).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"outcome"}),
		transfer: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zerorealm_transfer_duration_seconds",
			Help:    "Time from a signed transfer or trade intent reaching the realm to its receipt (or refusal), by kind (transfer, trade) and outcome (receipt, replayed, refused).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"kind", "outcome"}),
		actions: NewLabels(maxActions),
	}
	reg.MustRegister(d.ceremony, d.decision, d.command, d.transfer)
	return d
}

// Ceremony observes a finished passkey ceremony.
func (d *Durations) Ceremony(ceremony, outcome string, took time.Duration) {
	d.ceremony.WithLabelValues(ceremony, outcome).Observe(took.Seconds())
}

// Decision observes one evaluation of a scene's policies.
func (d *Durations) Decision(action string, allow bool, took time.Duration) {
	action = d.actions.Value(action)
	effect := "deny"
	if allow {
		effect = "allow"
	}
	d.decision.WithLabelValues(action, effect).Observe(took.Seconds())
}

// TwinCommand observes a grant's delivery, from signing to the answer.
func (d *Durations) TwinCommand(outcome string, took time.Duration) {
	d.command.WithLabelValues(outcome).Observe(took.Seconds())
}

// Transfer observes a transfer or trade, from the intent to the answer.
func (d *Durations) Transfer(kind, outcome string, took time.Duration) {
	d.transfer.WithLabelValues(kind, outcome).Observe(took.Seconds())
}
