package xr

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/testlog"
	"github.com/zerorealm/zerorealm/trust"
)

// halfEnrolled is avatarID's enrollment of 10 s set aside after seconds
// of person seed's motion.
func halfEnrolled(t *testing.T, e *biometrics.Engine, avatarID string, seed int64, seconds int) *biometrics.Enrollment {
	t.Helper()
	s := e.NewStream(avatarID, nil)
	defer s.Close()
	s.StartEnrollment(10 * time.Second)
	frames := synth.NewPerson(seed).Session(0).Frames(seconds*72, 72)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i+4 <= len(frames); i += 4 {
		s.Push(frames[i:i+4], at.Add(time.Duration(frames[i+3].TimeUS)*time.Microsecond))
	}
	en := s.SetAsideEnrollment()
	if en == nil {
		t.Fatalf("%s: nothing to set aside after %d s of enrollment", avatarID, seconds)
	}
	return en
}

// TestPausedEnrollmentsKeepOnePerSessionForAWhile: the node keeps one
// enrollment per session, the newest, counts the memory they hold, drops
// an avatar's when its template is deleted, and prunes those kept too
// long; one kept too long, or for a suspended session, does not resume.
func TestPausedEnrollmentsKeepOnePerSessionForAWhile(t *testing.T) {
	e, err := biometrics.NewEngine(biometrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const within = 2 * time.Minute
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ps pausedEnrollments
	ada1 := halfEnrolled(t, e, "ada", 1, 5)
	ada2 := halfEnrolled(t, e, "ada", 1, 6)
	bob := halfEnrolled(t, e, "bob", 2, 4)

	total := 0
	total += ps.put("s-ada", pausedEnrollment{en: ada1, avatar: "ada", closedAt: t0}, within)
	total += ps.put("s-ada", pausedEnrollment{en: ada2, avatar: "ada", closedAt: t0.Add(time.Second)}, within)
	total += ps.put("s-bob", pausedEnrollment{en: bob, avatar: "bob", closedAt: t0}, within)
	if want := ada2.Bytes() + bob.Bytes(); total != want || ps.bytes != want {
		t.Fatalf("held %d bytes (deltas %d), want %d: one enrollment per session", ps.bytes, total, want)
	}
	if _, ok, _ := ps.take("s-other"); ok {
		t.Fatal("another session took an enrollment it never set aside")
	}
	p, ok, delta := ps.take("s-ada")
	if !ok || p.en != ada2 || delta != -ada2.Bytes() {
		t.Fatalf("take = %v %v %d, want the newest of the session and its bytes released", p.en, ok, delta)
	}
	if _, ok, _ := ps.take("s-ada"); ok {
		t.Fatal("an enrollment was taken twice")
	}
	if d := ps.dropAvatar("bob"); d != -bob.Bytes() || len(ps.of) != 0 || ps.bytes != 0 {
		t.Fatalf("after dropping bob's: %d left, %d bytes (delta %d)", len(ps.of), ps.bytes, d)
	}

	// The conditions of a resume.
	fresh := pausedEnrollment{en: ada2, avatar: "ada", closedAt: t0}
	if why := fresh.whyNotResume(t0.Add(within), within, trust.StepUp); why != "" {
		t.Errorf("an enrollment set aside %s ago does not resume: %s", within, why)
	}
	if why := fresh.whyNotResume(t0.Add(within+time.Second), within, trust.Trusted); !strings.Contains(why, "ago") {
		t.Errorf("an enrollment kept past %s: %q, want refused for its age", within, why)
	}
	if why := fresh.whyNotResume(t0.Add(time.Second), within, trust.Suspended); !strings.Contains(why, "suspended") {
		t.Errorf("a suspended session's enrollment: %q, want refused", why)
	}

	// Pruning: once many are kept, those older than within go.
	for i := range minPausedPrune {
		ps.put(string(rune('A'+i)), pausedEnrollment{en: ada1, avatar: "ada", closedAt: t0}, within)
	}
	ps.put("late", pausedEnrollment{en: bob, avatar: "bob", closedAt: t0.Add(within + time.Second)}, within)
	if len(ps.of) != 1 || ps.bytes != bob.Bytes() {
		t.Fatalf("after a put past %s: %d kept (%d bytes), want only the new one", within, len(ps.of), ps.bytes)
	}
}

// TestEnrollmentNotResumedIsCounted: a session's stream that comes back
// to an enrollment it may not go on with (kept too long, the session
// suspended, or a template deletion since its consent) starts without it,
// and the node counts each as not-resumed, beside the one that resumes.
func TestEnrollmentNotResumedIsCounted(t *testing.T) {
	e, err := biometrics.NewEngine(biometrics.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{log: testlog.New(t), engine: e, enrollWithin: 2 * time.Minute,
		reg: registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}}}
	s.m = newMetrics(prometheus.NewRegistry(), s)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		back    time.Duration
		state   trust.State
		deleted time.Time
		resumed bool
	}{
		{"in time", time.Minute, trust.Trusted, time.Time{}, true},
		{"too late", 3 * time.Minute, trust.Trusted, time.Time{}, false},
		{"suspended", time.Minute, trust.Suspended, time.Time{}, false},
		{"deleted since", time.Minute, trust.Trusted, t0.Add(-time.Second), false},
	}
	for i, c := range cases {
		id := fmt.Sprintf("s%d", i)
		s.paused.put(id, pausedEnrollment{en: halfEnrolled(t, e, "ada", 1, 5), avatar: "ada", consentAt: t0.Add(-time.Minute), closedAt: t0}, s.enrollWithin)
		x := &sessionStream{id: id, sess: session.Session{ID: id, Avatar: "ada"}, stream: e.NewStream("ada", nil)}
		if got := s.resumeEnrollment(x, c.state, c.deleted, t0.Add(c.back)); got != c.resumed || x.stream.Enrolling() != c.resumed {
			t.Errorf("%s: resumed %v (enrolling %v), want %v", c.name, got, x.stream.Enrolling(), c.resumed)
		}
		x.stream.Close()
	}
	// The node's registry also holds gauges of parts this test has not
	// built; the counter is read through a registry of its own.
	counted := prometheus.NewRegistry()
	counted.MustRegister(s.m.enrollments)
	families, err := counted.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "zerorealm_xr_enrollments_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	for what, want := range map[string]float64{"resumed": 1, "not-resumed": 3} {
		if got[what] != want {
			t.Errorf("zerorealm_xr_enrollments_total{what=%q} = %v, want %v", what, got[what], want)
		}
	}
}

// TestEnrollmentSetAsideGoesOnOnOneNodeOnly: an enrollment set aside on
// this node is also in the store, and goes on on one node only. Taken up
// again here, its copy in the store is removed, even when this node takes
// it up before the store has answered the write, and a stream that removed
// it without going on leaves it to the next; claimed first by another
// node, this node's own is dropped, and counted as not resumed.
func TestEnrollmentSetAsideGoesOnOnOneNodeOnly(t *testing.T) {
	ctx := context.Background()
	e, err := biometrics.NewEngine(biometrics.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// This node reaches the store through a proxy that can hold its
	// writes back; the other node directly.
	srv := natstest.RunServer(t)
	proxy := natstest.NewStallingProxy(t, srv.Addr().String())
	key := make([]byte, 32)
	asideOver := func(url string) *biometrics.AsideStore {
		t.Helper()
		st, err := store.New(ctx, natstest.Connect(t, url), store.Config{})
		if err != nil {
			t.Fatal(err)
		}
		as, err := biometrics.NewAsideStore(ctx, st, key, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	here, elsewhere := asideOver(proxy.URL()), asideOver(srv.ClientURL())
	s := &Service{log: testlog.New(t), engine: e, aside: here, enrollWithin: 2 * time.Minute,
		reg: registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}}}
	s.stop, s.stopAll = context.WithCancel(ctx)
	defer s.stopAll()
	s.m = newMetrics(prometheus.NewRegistry(), s)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	closing := func(id string) *sessionStream {
		t.Helper()
		x := &sessionStream{id: id, sess: session.Session{ID: id, Avatar: "ada"}, stream: e.NewStream("ada", nil), consentAt: t0.Add(-time.Minute)}
		if err := x.stream.ResumeEnrollment(halfEnrolled(t, e, "ada", 1, 5)); err != nil {
			t.Fatal(err)
		}
		s.setAsideEnrollment(x, t0)
		x.stream.Close()
		return x
	}
	stored := func(id string) bool {
		t.Helper()
		sealed, ok, err := elsewhere.Claim(ctx, "ada", id)
		if err != nil {
			t.Fatal(err)
		}
		return ok && sealed.Enrollment.Collected() > 0
	}
	resumes := func(id string) bool {
		x := &sessionStream{id: id, sess: session.Session{ID: id, Avatar: "ada"}, stream: e.NewStream("ada", nil)}
		defer x.stream.Close()
		s.takeUpSetAside(ctx, id, "ada")
		return s.resumeEnrollment(x, trust.Trusted, time.Time{}, t0.Add(time.Minute))
	}

	// Taken up here once the store has it: the store's copy goes.
	closing("s-after")
	s.sharing.wg.Wait()
	if !resumes("s-after") {
		t.Fatal("the enrollment set aside here did not resume here")
	}
	if stored("s-after") {
		t.Error("the store still offers an enrollment this node went on with")
	}

	// Released here by a stream that then did not go on with it (its
	// store reads failed, or it closed): the next stream still does.
	closing("s-twice")
	s.sharing.wg.Wait()
	s.takeUpSetAside(ctx, "s-twice", "ada")
	if !resumes("s-twice") {
		t.Fatal("an enrollment whose store copy this node removed did not resume at the next stream")
	}

	// Taken up here before the store answered: the writer removes it.
	proxy.Stall()
	closing("s-early")
	if !resumes("s-early") {
		t.Fatal("the enrollment set aside here did not resume here before its write was answered")
	}
	proxy.Resume()
	s.sharing.wg.Wait()
	if stored("s-early") {
		t.Error("the store still offers an enrollment this node took up before the write landed")
	}

	// Claimed by another node first: not resumed here.
	closing("s-moved")
	s.sharing.wg.Wait()
	if !stored("s-moved") {
		t.Fatal("another node found no enrollment set aside here")
	}
	if resumes("s-moved") {
		t.Error("an enrollment another node took up resumed here too")
	}
	if s.paused.holds("s-moved") {
		t.Error("this node still holds an enrollment another node took up")
	}
}
