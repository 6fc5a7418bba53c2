package biometrics

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Engine is what a realm node shares between its avatars' streams: the
// background model fitted from the enrolled population (starting from a
// prior), and the replay registry. It is safe for concurrent use.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	replay *replayRegistry
	lag    *nodeLag // the node's read lag, which the streams' clock checks discount

	mu         sync.Mutex // guards population, prior and peers; model is swapped atomically
	population map[string]*Template
	prior      []NamedTemplate
	peers      map[string]*Background
	lastShared map[string]bool // the people of the last ShareBackground
	model      atomic.Pointer[Model]
	nextStream atomic.Uint32
	thin       atomic.Bool // SetThinning
	// idents keeps each avatar's stream number across its streams here
	// (streamIdents).
	idents streamIdents

	// scratch holds what handling one window needs and no stream keeps
	// between windows (a copy of the window's samples and the extractor's
	// per-sample channels, about 40 KiB): a stream borrows it once a hop,
	// so a node holds about one per busy core instead of one per avatar.
	scratch sync.Pool
	// pointsScratch holds a window's moving points (*windowPoints) from
	// the moment they are taken until the liveness checks have filed
	// them: each window once took a new array for each of its four lists
	// and grew it point by point, a seventh of what a node streaming
	// 2,000 avatars allocated.
	pointsScratch sync.Pool

	// refitMu guards lastRefit and refitPending. Lock order: refitMu is
	// never held while taking mu (refit runs after it is released).
	refitMu      sync.Mutex
	lastRefit    time.Time
	refitPending bool
	// fitting is held for the whole of a refit, from reading the
	// population to storing the model, so that refits run one at a time
	// and the model stored last is fitted from the newest population: a
	// coalesced refit and a Refit asked for meanwhile could otherwise
	// finish in the other order. Lock order: fitting, then mu.
	fitting sync.Mutex
	// fittedHook, when set (by tests only), runs after a refit has fitted
	// its model and before it stores it.
	fittedHook func()
}

// refitEvery coalesces refits: a model refit walks the whole population,
// so when many avatars finish enrolling together (a classroom putting on
// headsets) they share one refit a second instead of each paying for one
// inside its own frame path.
const refitEvery = time.Second

// refitPerPerson stretches refitEvery with the population (refitInterval).
// A refit walks every person, and requests for one come in proportion to
// the people too: each trusted stream hands its adapted template back
// every 5 minutes, so 2,500 of them ask for a refit every second, and a
// refit a second then costs a share of a core that grows with the
// population: a refit of 2,500 people takes 36 ms (BenchmarkRefit), 3.6 %
// of a core at one a second, which a node's profile showed. Coalesced
// over 4 ms per person, refits cost under 1.5 % of a core at any
// population, and a change waits longest where one person weighs least
// in the model: 10 s at 2,500 people.
const refitPerPerson = 4 * time.Millisecond

// refitInterval is how long refits are coalesced over, for a population
// of n people.
func refitInterval(n int) time.Duration {
	return max(refitEvery, time.Duration(n)*refitPerPerson)
}

// NewEngine validates cfg and fits the first model from the prior
// templates, if any. Without a model, streams collect and check motion but
// emit no scores until two templates are known.
func NewEngine(cfg Config, prior ...NamedTemplate) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, replay: newReplayRegistry(cfg), lag: newNodeLag(cfg.Logger), population: map[string]*Template{}, peers: map[string]*Background{}}
	e.scratch.New = func() any { return &windowScratch{ex: newExtractor(cfg)} }
	e.pointsScratch.New = func() any { return new(windowPoints) }
	for _, p := range prior {
		if err := p.Template.validate(); err != nil {
			return nil, err
		}
	}
	// The engine keeps its own copy of the prior, as it does of every
	// template it is given, so that callers may share one prior among
	// engines (the realm computes it once per process).
	// The prior joins the background by its templates' covariances, never
	// by drift statistics.
	for _, p := range prior {
		e.prior = append(e.prior, NamedTemplate{ID: p.ID, Template: p.Template.cloneWithoutDrift()})
	}
	_ = e.refit() // logged; the next refit tries again
	return e, nil
}

// SetTemplate adds or replaces an avatar's template in the population the
// model is fitted from (the realm calls it for every template it loads and
// every enrollment).
func (e *Engine) SetTemplate(avatarID string, t *Template) {
	if t == nil || t.validate() != nil {
		return
	}
	c := e.populationCopy(t)
	e.mu.Lock()
	c.Cov = sameCov(e.population[avatarID], c.Cov)
	e.population[avatarID] = c
	e.mu.Unlock()
	e.requestRefit()
}

// populationCopy is the engine's own copy of a template. The drift
// statistics are in it only when the background learns from them
// (Config.DriftBackground): otherwise nothing the engine does reads them,
// and the stream that adapts them keeps its own, so a copy here would be
// a second 14 KiB per person that only changes when the stream's is
// handed back.
func (e *Engine) populationCopy(t *Template) *Template {
	if e.cfg.DriftBackground {
		return t.clone()
	}
	return t.cloneWithoutDrift()
}

// sameCov returns the covariance of have when it holds the same values as
// cov, and cov otherwise. A person's covariance is fixed at enrollment, but
// each copy of their template read from the store or handed back by
// adaptation arrives in an array of its own; keeping the one already held
// means a node stores it once per person (27 KiB each), however many times
// the template is read and however many streams it has.
func sameCov(have *Template, cov []float64) []float64 {
	if have != nil && slices.Equal(have.Cov, cov) {
		return have.Cov
	}
	return cov
}

// RemoveTemplate takes an avatar out of the population, when its template
// is deleted.
func (e *Engine) RemoveTemplate(avatarID string) {
	e.mu.Lock()
	delete(e.population, avatarID)
	e.mu.Unlock()
	e.requestRefit()
}

// requestRefit refits now if the last refit is at least refitInterval
// old, and otherwise schedules one refit for when it is; requests
// meanwhile join that one.
func (e *Engine) requestRefit() {
	e.mu.Lock()
	every := refitInterval(len(e.population))
	e.mu.Unlock()
	e.refitMu.Lock()
	if e.refitPending {
		e.refitMu.Unlock()
		return
	}
	now := time.Now()
	if wait := e.lastRefit.Add(every).Sub(now); wait > 0 {
		e.refitPending = true
		e.refitMu.Unlock()
		time.AfterFunc(wait, func() {
			e.refitMu.Lock()
			e.refitPending, e.lastRefit = false, time.Now()
			e.refitMu.Unlock()
			_ = e.refit() // logged; the next refit tries again
		})
		return
	}
	e.lastRefit = now
	e.refitMu.Unlock()
	_ = e.refit() // logged; the next refit tries again
}

// Refit fits the model from the population now, and the refits coalesced
// for later still come. A caller that has just set a whole population (a
// node that loaded its stored templates, an evaluation) calls it so that
// the model is theirs at once: coalescing would leave it fitted from the
// first template alone for up to refitInterval, 10 s at 2,500 people.
// It returns why the population did not fit, when it did not (the model
// is then the one before, and the failure is logged as for any refit);
// fewer than two people fit no model, which is no failure.
func (e *Engine) Refit() error {
	e.refitMu.Lock()
	e.lastRefit = time.Now()
	e.refitMu.Unlock()
	return e.refit()
}

// Model returns the current background model, or nil if there is none yet.
func (e *Engine) Model() *Model { return e.model.Load() }

// refit fits the model from the enrolled population first and the prior
// after it: real people are the better cohort, and the prior keeps a young
// node's model from resting on two or three of them. Once the node has
// Config.PriorAsideFrom real people, the prior steps aside. Peers'
// shared statistics join the whitening, never the cohort.
func (e *Engine) refit() error {
	e.fitting.Lock()
	defer e.fitting.Unlock()
	e.mu.Lock()
	ids := make([]string, 0, len(e.population))
	for id := range e.population {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	cohort := make([]NamedTemplate, 0, len(ids)+len(e.prior))
	for _, id := range ids {
		cohort = append(cohort, NamedTemplate{ID: id, Template: e.population[id]})
	}
	bg := e.localBackground(cohort)
	if !e.priorAside(len(ids)) {
		for _, p := range e.prior {
			_ = bg.AddTemplate(p.Template) // validated by NewEngine
		}
		cohort = append(cohort, e.prior...)
	}
	// Peers join in the order of their names, so that a refit with the
	// same statistics rounds the same way, and together they count as at
	// most as many people as the node's own background: a peer realm, even
	// one whose key was stolen, never outweighs the people this node
	// measured (a node with no background of its own counts them as k).
	peers := &Background{}
	for _, name := range slices.Sorted(maps.Keys(e.peers)) {
		peers.Merge(e.peers[name])
	}
	bg.mergeAtMost(peers, max(bg.People, DefaultShareMinPeople))
	e.mu.Unlock()
	if bg.People < 2 {
		return nil
	}
	m, err := FitBackground(bg, cohort, e.cfg.MaxCohort)
	if err != nil {
		e.log.Warn("biometric background not refitted", "err", err)
		return fmt.Errorf("biometrics: background not refitted: %w", err)
	}
	if e.fittedHook != nil {
		e.fittedHook()
	}
	e.model.Store(m)
	return nil
}

// localBackground sums the statistics of the node's own people.
func (e *Engine) localBackground(people []NamedTemplate) *Background {
	bg := &Background{}
	for _, p := range people {
		if e.cfg.DriftBackground && p.Template.Drift != nil && bg.AddScatter(p.Template.Drift) == nil {
			continue
		}
		_ = bg.AddTemplate(p.Template) // validated by SetTemplate
	}
	return bg
}

// ShareBackground returns the statistics of the node's own enrolled
// people that it may give another realm: sums over at least minPeople
// (never fewer than DefaultShareMinPeople) people, and nothing of the
// prior or of peers (ErrTooFewToShare otherwise). Two shares whose
// populations differ by one person would give that person's statistics by
// subtraction, so once the node has shared, it shares again only the same
// people or a population that changed by at least as many people as k.
func (e *Engine) ShareBackground(minPeople int) (*Background, error) {
	minPeople = max(minPeople, DefaultShareMinPeople)
	e.mu.Lock()
	defer e.mu.Unlock()
	people := make([]NamedTemplate, 0, len(e.population))
	members := make(map[string]bool, len(e.population))
	for id, t := range e.population {
		people = append(people, NamedTemplate{ID: id, Template: t})
		members[id] = true
	}
	if changed := membershipChange(e.lastShared, members); e.lastShared != nil && changed > 0 && changed < minPeople {
		return nil, fmt.Errorf("%w: %d people changed since the last share, need %d", ErrTooFewToShare, changed, minPeople)
	}
	shared, err := e.localBackground(people).Share(minPeople)
	if err != nil {
		return nil, err
	}
	e.lastShared = members
	return shared, nil
}

// SharePopulation returns the statistics of the node's own enrolled
// people that it may give another realm, as ShareBackground does, and
// who they are, without ShareBackground's rule on the people changed
// since the node's last share: a realm of several nodes keeps that rule
// across its nodes, each of which may see one person more or less than
// another for a moment, and applies it to the people returned
// (realm/internal/peerbackground).
func (e *Engine) SharePopulation(minPeople int) (*Background, []string, error) {
	minPeople = max(minPeople, DefaultShareMinPeople)
	e.mu.Lock()
	defer e.mu.Unlock()
	people := make([]NamedTemplate, 0, len(e.population))
	ids := make([]string, 0, len(e.population))
	for id, t := range e.population {
		people = append(people, NamedTemplate{ID: id, Template: t})
		ids = append(ids, id)
	}
	shared, err := e.localBackground(people).Share(minPeople)
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(ids)
	return shared, ids, nil
}

// membershipChange counts the people in exactly one of a and b.
func membershipChange(a, b map[string]bool) int {
	n := 0
	for id := range a {
		if !b[id] {
			n++
		}
	}
	for id := range b {
		if !a[id] {
			n++
		}
	}
	return n
}

// SetThinning turns thinning on or off: while it is on, each stream that
// the realm trusts (Stream.SetTrusted) and whose match probability is at
// or above Config.AdaptAbove leaves every other window unjudged. A node
// short of CPU thins instead of refusing or shedding streams: the windows
// still judged are back to back, so every sample of motion is still
// scored, checked for liveness and filed for replays, at about half the
// CPU of the windows; what is slower is the evidence (a change of wearer
// is seen up to two hops later, as the first doubtful window ends the
// thinning for its stream) and the scores, one every two hops.
func (e *Engine) SetThinning(on bool) { e.thin.Store(on) }

// Thinning reports whether the engine thins (SetThinning).
func (e *Engine) Thinning() bool { return e.thin.Load() }

// SetPeerBackground adds or replaces the statistics a trusted peer shared
// (nil removes them). The peer's people must not be this node's: their
// statistics would count twice. Fewer than DefaultShareMinPeople people
// are refused, as Share would have, and so are statistics no population
// gives (ErrNotAPopulation). However many people a peer claims, peers
// together weigh at most as much as the node's own background.
func (e *Engine) SetPeerBackground(peer string, b *Background) error {
	if b != nil {
		if err := b.checkPopulation(); err != nil {
			return err
		}
		if b.People < DefaultShareMinPeople {
			return fmt.Errorf("%w: peer %q shared %d people", ErrTooFewToShare, peer, b.People)
		}
		c := &Background{}
		c.Merge(b)
		b = c
	}
	e.mu.Lock()
	if b == nil {
		delete(e.peers, peer)
	} else {
		e.peers[peer] = b
	}
	e.mu.Unlock()
	e.requestRefit()
	return nil
}

// PeerBackground is a copy of the statistics peer shared that the engine
// whitens with, nil when it has none of that peer's.
func (e *Engine) PeerBackground(peer string) *Background {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.peers[peer]
	if !ok {
		return nil
	}
	c := &Background{}
	c.Merge(b)
	return c
}

// priorAside says whether a node of real people no longer uses the prior.
func (e *Engine) priorAside(real int) bool {
	return e.cfg.PriorAsideFrom >= 0 && real >= e.cfg.PriorAsideFrom
}

// windowScratch is the space one window is handled in; see Engine.scratch.
type windowScratch struct {
	samples []sample
	ex      *extractor
}
