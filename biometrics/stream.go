package biometrics

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// EventScore: a window was scored; Probability is the accumulated
	// probability that the wearer is the enrolled person
	// (trust.BiometricMatch).
	EventScore EventKind = iota + 1
	// EventLiveness: the motion is not live; Reason says why
	// (trust.Liveness with Live false).
	EventLiveness
	// EventEnrolled: enrollment finished; Template is ready to store.
	EventEnrolled
	// EventAdapted: the template drifted with the trusted wearer; Template
	// is the new version to store.
	EventAdapted
)

func (k EventKind) String() string {
	switch k {
	case EventScore:
		return "score"
	case EventLiveness:
		return "liveness"
	case EventEnrolled:
		return "enrolled"
	case EventAdapted:
		return "adapted"
	}
	return "unknown"
}

// Event is what a stream tells the realm.
type Event struct {
	Kind        EventKind
	At          time.Time
	Probability float64
	Reason      string
	// Detail says more of a liveness failure than its Reason, for the
	// node's log: what the clock check measured.
	Detail   string
	Template *Template
}

// Liveness reasons.
const (
	LivenessReplay      = "replayed motion: it retraces motion seen before"
	LivenessLoop        = "looped motion: it repeats itself exactly"
	LivenessNoTremor    = "no physiological tremor: no hand is that steady"
	LivenessTeleport    = "teleporting hands: faster than a hand can move"
	LivenessClock       = "impossible timing: the device clock does not keep time with arrival"
	livenessRepeatAfter = 30 * time.Second
)

// adaptEmitEvery is how often an adapting template is handed back to be
// stored: often enough to keep the drift, rarely enough not to write per
// window.
const adaptEmitEvery = 5 * time.Minute

// StreamStats are a stream's counters.
type StreamStats struct {
	FramesAccepted uint64
	FramesRejected map[string]uint64 // by reason
	WindowsScored  uint64
	WindowsSkipped uint64 // too little tracked motion
	// WindowsThinned counts the windows left unjudged while the engine
	// thinned (Engine.SetThinning).
	WindowsThinned uint64
	LivenessFailed map[string]uint64
	Probability    float64
	StateBytes     int // memory the stream holds
	Enrolling      bool
	// EnrollCollected and EnrollWant count the windows of an enrollment
	// in progress: those collected and those it needs in all.
	EnrollCollected, EnrollWant int
	// EnrollmentsAbandoned counts the enrollments the stream ended for
	// motion that was not live.
	EnrollmentsAbandoned uint64
}

// Stream is one avatar's live motion. Push is safe to call from one
// goroutine at a time per stream (the connection's reader); Stats and
// StartEnrollment may be called from others.
type Stream struct {
	e  *Engine
	id string
	n  uint32 // stream number in the replay registry
	// closed: Close has run.
	closed atomic.Bool

	mu sync.Mutex
	// verification
	tmpl      *Template
	claim     *Claim
	claimOf   *Model
	evidence  float64
	trusted   bool
	adaptedAt time.Time
	adapting  bool
	// thinnedLast: the last window was left unjudged (Engine.SetThinning),
	// so this one is judged, and takes in the last one's motion points.
	thinnedLast bool
	// ingestion
	rs       resampler
	win      *windower
	lastTime uint64
	haveLast bool
	prevRaw  Frame
	// enrollment
	enrollWant int
	enrolled   []Features
	// liveness
	live     liveState
	lag      lagProbe
	lastEmit map[string]time.Time
	stats    StreamStats
}

// NewStream starts a stream for avatarID; tmpl nil means not enrolled yet.
func (e *Engine) NewStream(avatarID string, tmpl *Template) *Stream {
	cfg := e.cfg
	n, samples := e.idents.open(e, avatarID)
	s := &Stream{
		e:        e,
		id:       avatarID,
		n:        n,
		rs:       resampler{step: uint64(time.Second/time.Microsecond) / uint64(cfg.SampleRate), maxGap: uint64(cfg.MaxGap / time.Microsecond)},
		win:      newWindower(cfg.windowSamples(), cfg.hopSamples()),
		lastEmit: map[string]time.Time{},
		live:     newLiveState(cfg),
	}
	s.live.samples = samples
	s.stats.FramesRejected = map[string]uint64{}
	s.stats.LivenessFailed = map[string]uint64{}
	e.lag.add(&s.lag)
	if tmpl != nil && tmpl.validate() == nil {
		s.tmpl = tmpl.clone()
		e.mu.Lock()
		s.tmpl.Cov = sameCov(e.population[avatarID], s.tmpl.Cov)
		e.mu.Unlock()
	}
	return s
}

// StartEnrollment collects d of motion (the default when d is 0) and then
// emits EventEnrolled with a new template, which the stream uses from then
// on. The realm calls it right after a user-verified passkey assertion.
func (s *Stream) StartEnrollment(d time.Duration) {
	if d <= 0 {
		d = s.e.cfg.EnrollDuration
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enrollWant = max(2, int(d/s.e.cfg.Hop))
	s.enrolled = s.enrolled[:0]
}

// Enrolling reports whether the stream is collecting an enrollment: one
// started or resumed, not yet finished, set aside or abandoned.
func (s *Stream) Enrolling() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enrollWant > 0
}

// Enrollment is an enrollment a stream did not finish: the statistics of
// the windows it collected (never the motion they came from) and how many
// it wants. A stream that closes part of the way through (a node shedding
// it, a headset losing its connection) sets it aside, and the avatar's
// next stream takes it up, so that an interruption costs the person only
// the motion not yet collected, and a busy node does not collect the same
// minute of motion twice. It belongs to one goroutine at a time: the one
// that set it aside, then the one that resumes it.
type Enrollment struct {
	avatarID string
	want     int
	windows  []Features
}

// Collected is how many windows the enrollment holds.
func (en *Enrollment) Collected() int { return len(en.windows) }

// Want is how many windows the enrollment needs in all.
func (en *Enrollment) Want() int { return en.want }

// Bytes is the memory the enrollment holds.
func (en *Enrollment) Bytes() int {
	return int(unsafe.Sizeof(*en)) + len(en.windows)*enrolledWindowBytes
}

const enrolledWindowBytes = NumCoreFeatures*8 + int(unsafe.Sizeof(Features{}))

// ErrEnrollmentResume: an enrollment set aside cannot go on in a stream.
var ErrEnrollmentResume = errors.New("biometrics: enrollment cannot resume")

// SetAsideEnrollment ends the stream's enrollment and returns what it has
// collected, for ResumeEnrollment; nil when the stream is not enrolling
// or has collected nothing yet.
func (s *Stream) SetAsideEnrollment() *Enrollment {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enrollWant == 0 || len(s.enrolled) == 0 {
		return nil
	}
	en := &Enrollment{avatarID: s.id, want: s.enrollWant, windows: s.enrolled}
	s.enrollWant, s.enrolled = 0, nil
	return en
}

// ResumeEnrollment goes on with en in this stream, which collects the
// windows en still wants and then emits EventEnrolled with a template of
// all of them, as if it had collected them all. en is used up: a second
// resume of it is refused, as is one in another avatar's stream.
func (s *Stream) ResumeEnrollment(en *Enrollment) error {
	switch {
	case en == nil || en.windows == nil:
		return fmt.Errorf("%w: nothing to resume", ErrEnrollmentResume)
	case en.avatarID != s.id:
		return fmt.Errorf("%w: it is another avatar's", ErrEnrollmentResume)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enrollWant, s.enrolled = en.want, en.windows
	en.windows = nil
	return nil
}

// ErrAdoptTemplate: a stream cannot take a template it did not open with.
var ErrAdoptTemplate = errors.New("biometrics: template cannot be adopted")

// AdoptTemplate gives a stream that opened without a template the avatar's
// template, from the next window on: the realm could not read it when the
// stream opened (its store did not answer in time), or the avatar enrolled
// through another node since. The evidence starts from nothing, as at a
// stream's start. A stream that has a template, or is collecting one, or
// has closed keeps what it has and says why.
func (s *Stream) AdoptTemplate(t *Template) error {
	if t == nil {
		return fmt.Errorf("%w: no template", ErrAdoptTemplate)
	}
	if err := t.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrAdoptTemplate, err)
	}
	c := t.clone()
	s.e.mu.Lock()
	c.Cov = sameCov(s.e.population[s.id], c.Cov)
	s.e.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed.Load():
		return fmt.Errorf("%w: the stream has closed", ErrAdoptTemplate)
	case s.tmpl != nil:
		return fmt.Errorf("%w: the stream has a template", ErrAdoptTemplate)
	case s.enrollWant > 0:
		return fmt.Errorf("%w: the stream is enrolling", ErrAdoptTemplate)
	}
	s.tmpl, s.claim, s.claimOf, s.evidence = c, nil, nil, 0
	s.adapting = false
	return nil
}

// SetTrusted tells the stream whether the realm trusts the session now:
// the template adapts only while it does, so that an impostor who got past
// a step-up cannot pull the template towards themselves.
func (s *Stream) SetTrusted(trusted bool) {
	s.mu.Lock()
	s.trusted = trusted
	s.mu.Unlock()
}

// Close forgets the stream's place in the replay registry (its motion stays
// there until it ages out; the avatar's next stream here takes it as its
// own) and leaves the node's lag estimate. A second Close does nothing.
func (s *Stream) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.mu.Lock()
	samples := s.live.samples
	s.mu.Unlock()
	s.e.replay.forget(s.n)
	s.e.idents.close(s.e, s.id, s.n, samples)
	s.e.lag.remove(&s.lag)
}

// Late is how much later than its best the stream's latest accepted
// frame arrived, against its device clock: the frame's arrival-minus-
// device offset less the lowest the stream has had. It is the node's
// late reading, the network's delay or the device's clock drifting, and
// cannot be told apart from the stream alone; a node that is behind uses
// it to find the streams it is furthest behind on where the kernel gives
// no stamp (frames over WebRTC).
func (s *Stream) Late() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.live.climb) * time.Microsecond
}

// Stats returns a copy of the stream's counters.
func (s *Stream) Stats() StreamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.FramesRejected = make(map[string]uint64, len(s.stats.FramesRejected))
	for k, v := range s.stats.FramesRejected {
		st.FramesRejected[k] = v
	}
	st.LivenessFailed = make(map[string]uint64, len(s.stats.LivenessFailed))
	for k, v := range s.stats.LivenessFailed {
		st.LivenessFailed[k] = v
	}
	st.Probability = sigmoid(s.evidence)
	st.Enrolling = s.enrollWant > 0
	st.EnrollCollected, st.EnrollWant = len(s.enrolled), s.enrollWant
	st.StateBytes = s.stateBytes()
	return st
}

func (s *Stream) stateBytes() int {
	n := int(unsafe.Sizeof(*s))
	n += (cap(s.win.ring.buf) + cap(s.rs.out)) * int(unsafe.Sizeof(sample{}))
	// The window's copy and the extractor's scratch are the engine's,
	// lent for one window at a time (Engine.scratch).
	n += s.live.bytes()
	n += len(s.enrolled) * enrolledWindowBytes
	// The template's covariance is not counted: the engine's population
	// holds the same array (sameCov), once per person, not per stream.
	if s.tmpl != nil {
		n += len(s.tmpl.Mean) * 8
		if s.tmpl.Drift != nil {
			n += (len(s.tmpl.Drift.Sum) + len(s.tmpl.Drift.Outer)) * 8
		}
	}
	if s.claim != nil {
		n += len(s.claim.y) * 8
	}
	return n
}

// Push ingests frames that arrived together, read by the node at arrival,
// and returns what they caused. Frames whose timestamp is not after the
// stream's previous frame are rejected (a late or reordered message's
// frames are simply dropped: a data channel without retransmits loses some
// anyway).
func (s *Stream) Push(frames []Frame, arrival time.Time) []Event {
	return s.push(frames, arrival, arrival, false)
}

// PushReceived is Push for frames whose bytes the machine received at
// received, before the node read them at read: the kernel's stamp of
// their arrival (internal/netstamp), which neither the client nor the
// node's own backlog can move. The timing checks judge the device clock
// against received, so a node that reads a socket late, however unevenly
// across its streams, never makes that stream's device look slow; the
// node's read lag estimate still learns from read, since that is what
// it measures, and only the part of it that received does not already
// remove is discounted. Everything else is dated read.
func (s *Stream) PushReceived(frames []Frame, received, read time.Time) []Event {
	return s.push(frames, received, read, true)
}

func (s *Stream) push(frames []Frame, received, read time.Time, stamped bool) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if received.After(read) {
		received = read // a wall clock step between the stamp and the read
	}
	held := read.Sub(received).Microseconds()
	measured := int64(noHeld)
	if stamped {
		measured = held
	}
	var events []Event
	for i := range frames {
		f := &frames[i]
		if reason := s.admit(f); reason != "" {
			s.stats.FramesRejected[reason]++
			continue
		}
		if s.live.jumped(f, &s.prevRaw, s.haveLast, received) {
			s.stats.FramesRejected[ReasonJump]++
			continue
		}
		s.stats.FramesAccepted++
		lag := s.e.lag.frame(&s.lag, read.UnixMicro(), read.UnixMicro()-int64(f.TimeUS), measured)
		offset := received.UnixMicro() - int64(f.TimeUS)
		if reason := s.live.frame(offset, max(lag-held, 0), received); reason != "" {
			events = s.failLiveness(events, reason, s.live.clockDetail, read)
		}
		s.prevRaw, s.lastTime, s.haveLast = *f, f.TimeUS, true
		for i := range s.rs.push(f) {
			s.live.samples++
			if s.win.add(&s.rs.out[i]) {
				events = s.window(events, read)
			}
		}
	}
	return events
}

func (s *Stream) admit(f *Frame) string {
	if s.haveLast && f.TimeUS <= s.lastTime {
		return ReasonNonMonotonic
	}
	if r := ValidateFrame(f); r != "" {
		return r
	}
	if !f.Head.Tracked {
		return ReasonUntrackedHead
	}
	return ""
}

func (s *Stream) failLiveness(events []Event, reason, detail string, at time.Time) []Event {
	s.stats.LivenessFailed[reason]++
	if s.enrollWant > 0 {
		// A template must be the person's own live motion: an enrollment
		// that meets motion that is not live ends, keeping nothing, and
		// only a new consent (StartEnrollment) starts another.
		s.enrollWant, s.enrolled = 0, nil
		s.stats.EnrollmentsAbandoned++
	}
	if last, ok := s.lastEmit[reason]; ok && at.Sub(last) < livenessRepeatAfter {
		return events
	}
	s.lastEmit[reason] = at
	return append(events, Event{Kind: EventLiveness, At: at, Reason: reason, Detail: detail})
}

// window handles one completed window: liveness, enrollment, scoring and
// adaptation.
func (s *Stream) window(events []Event, at time.Time) []Event {
	fresh := s.e.cfg.hopSamples()
	if s.thinnedLast {
		fresh *= 2
	} else if s.thins() {
		s.thinnedLast = true
		s.stats.WindowsThinned++
		return events
	}
	s.thinnedLast = false
	sc := s.e.scratch.Get().(*windowScratch)
	sc.samples = s.win.window(sc.samples)
	w := sc.samples
	f, ok := sc.ex.extract(w)
	var pts *windowPoints
	if ok {
		pts = s.live.points(s, w, sc.ex.handRel, fresh)
	}
	// The scratch goes back before anything waits on a lock: streams
	// queued on the replay registry's lock would otherwise each hold one
	// (35 MB of them in a 2,000-avatar run).
	s.e.scratch.Put(sc)
	if !ok {
		s.stats.WindowsSkipped++
		return events
	}
	reasons := s.live.window(s, &f, pts, at)
	s.e.pointsScratch.Put(pts) // filed and compared: nothing holds them now
	for _, reason := range reasons {
		events = s.failLiveness(events, reason, "", at)
	}
	if s.enrollWant > 0 {
		s.enrolled = append(s.enrolled, f)
		if len(s.enrolled) >= s.enrollWant {
			t, err := NewTemplate(s.enrolled, at)
			s.enrollWant, s.enrolled = 0, nil
			if err == nil {
				s.tmpl, s.claim, s.evidence = t, nil, 0
				s.e.SetTemplate(s.id, t)
				events = append(events, Event{Kind: EventEnrolled, At: at, Template: t.clone()})
			}
		}
		return events
	}
	if s.tmpl == nil {
		return events
	}
	m := s.e.Model()
	if m == nil {
		return events
	}
	if s.claim == nil || s.claimOf != m {
		s.claim, s.claimOf = m.Claim(s.id, s.tmpl), m
	}
	score := m.Score(s.claim, m.Embed(&f))
	s.stats.WindowsScored++
	cfg := &s.e.cfg
	// Taking impostors as ~N(0,1) (cohort normalization puts them near
	// there) and the wearer as ~N(g,1), the log-likelihood ratio of one
	// window is g·s − g²/2 (see Config.GenuineMean).
	llr := clamp(cfg.GenuineMean*score-cfg.GenuineMean*cfg.GenuineMean/2, -cfg.WindowLLRLimit, cfg.WindowLLRLimit)
	s.evidence = clamp(s.evidence+llr, -cfg.EvidenceLimit, cfg.EvidenceLimit)
	p := sigmoid(s.evidence)
	events = append(events, Event{Kind: EventScore, At: at, Probability: p})
	if s.trusted && p >= cfg.AdaptAbove && cfg.AdaptRate > 0 {
		s.tmpl.adapt(&f, cfg.AdaptRate, at)
		s.claim = nil
		if !s.adapting {
			s.adapting, s.adaptedAt = true, at
		}
		if at.Sub(s.adaptedAt) >= adaptEmitEvery {
			s.adaptedAt = at
			s.e.SetTemplate(s.id, s.tmpl)
			events = append(events, Event{Kind: EventAdapted, At: at, Template: s.tmpl.clone()})
		}
	}
	return events
}

// thins reports whether this window is left unjudged: the engine is
// thinning, and the stream is one the realm trusts and whose evidence
// already holds its match probability at or above AdaptAbove. Any doubt
// (a lower probability, enrollment, no trust yet) judges every window,
// and so does the window after a thinned one: the windows judged are then
// back to back, so every sample still counts in one of them.
func (s *Stream) thins() bool {
	return s.e.thin.Load() && s.trusted && s.tmpl != nil && s.enrollWant == 0 &&
		sigmoid(s.evidence) >= s.e.cfg.AdaptAbove
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
