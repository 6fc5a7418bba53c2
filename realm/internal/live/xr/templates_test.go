package xr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/testlog"
)

// openTemplates opens the template store over a new connection to url,
// under a fixed key.
func openTemplates(t *testing.T, url string) *biometrics.TemplateStore {
	t.Helper()
	st, err := store.New(context.Background(), natstest.Connect(t, url), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	ts, err := biometrics.NewTemplateStore(context.Background(), st, key)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestFollowTemplatesReadsAgainWhatTheStoreDidNotAnswer: a node follows
// the template feed through a connection to NATS that stalls. A change
// whose template it cannot read, and a reconcile that cannot read, are
// tried again once the store answers: before, the node went without that
// template (neither scoring its avatar against it nor counting it in its
// background) until the template changed again.
func TestFollowTemplatesReadsAgainWhatTheStoreDidNotAnswer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out two store timeouts of 5 s")
	}
	ctx := context.Background()
	srv := natstest.RunServer(t)
	proxy := natstest.NewStallingProxy(t, srv.Addr().String())
	writer, reader := openTemplates(t, srv.ClientURL()), openTemplates(t, proxy.URL())
	engine, err := biometrics.NewEngine(biometrics.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{log: testlog.New(t), engine: engine, templates: reader,
		reg: registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}}}
	s.m = newMetrics(prometheus.NewRegistry(), s)

	changes := make(chan biometrics.TemplateChange)
	var following sync.WaitGroup
	following.Go(func() { s.followTemplates(ctx, changes) })
	defer following.Wait()
	defer close(changes)

	template := func(t *testing.T, seed int64) *biometrics.Template {
		t.Helper()
		ws, err := biometrics.Windows(synth.NewPerson(seed).Session(1).Frames(30*72, 72), biometrics.Config{})
		if err != nil {
			t.Fatal(err)
		}
		tm, err := biometrics.NewTemplate(ws, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	knownWithin := func(t *testing.T, what, avatarID string, limit time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(limit); !s.reg.knows(avatarID); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the node does not know %s's template after %v", what, avatarID, limit)
			}
		}
	}

	for _, c := range []struct {
		name, avatar string
		change       biometrics.TemplateChange
	}{
		{"a changed template", "ada", biometrics.TemplateChange{AvatarID: "ada"}},
		{"a reconcile after the feed resumed", "bob", biometrics.TemplateChange{Resumed: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := writer.Put(ctx, c.avatar, template(t, int64(len(c.avatar)+len(c.name)))); err != nil {
				t.Fatal(err)
			}
			proxy.Stall()
			changes <- c.change
			// The read waits out its timeout (5 s) while the store is
			// held back; the node must not know the template yet.
			time.Sleep(6 * time.Second)
			if s.reg.knows(c.avatar) {
				t.Fatalf("the node knows %s's template although its store answered nothing", c.avatar)
			}
			proxy.Resume()
			knownWithin(t, "read again after the store answered", c.avatar, 10*time.Second)
		})
	}
}

// TestUnstoredTemplateIsVoidAfterADeletion: a template the store did not
// take is stored again only if the avatar deleted no template since the
// consent it was collected under; a deletion since means the person asked
// for it to be gone, and a late write must not bring it back.
func TestUnstoredTemplateIsVoidAfterADeletion(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	ts := openTemplates(t, srv.ClientURL())
	engine, err := biometrics.NewEngine(biometrics.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{log: testlog.New(t), engine: engine, templates: ts, deps: Deps{Clock: clock.Or(nil)},
		reg: registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}}}
	ws, err := biometrics.Windows(synth.NewPerson(5).Session(1).Frames(30*72, 72), biometrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := biometrics.NewTemplate(ws, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Put(ctx, "ada", tmpl); err != nil {
		t.Fatal(err)
	}
	consent := time.Now()
	time.Sleep(10 * time.Millisecond)
	if err := ts.Delete(ctx, "ada"); err != nil {
		t.Fatal(err)
	}

	s.storeOnce(ctx, "ada", &unstoredTemplate{t: tmpl, since: consent})
	if _, err := ts.Get(ctx, "ada"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a template collected before the deletion was stored again: %v", err)
	}
	if n := s.unstored.count(); n != 0 {
		t.Fatalf("%d void templates kept to store again", n)
	}
	s.storeOnce(ctx, "ada", &unstoredTemplate{t: tmpl, since: time.Now()})
	if _, err := ts.Get(ctx, "ada"); err != nil {
		t.Fatalf("a template consented to after the deletion was not stored: %v", err)
	}
}

// TestUnstoredTemplatesKeepTheNewestAndTheEnrollment: the newest template
// of an avatar replaces an older one still to be stored, and an
// enrollment's record is still owed when an adapted template replaces it;
// while one is being written, a newer one waits behind it, and a write
// that fails does not replace the newer one but hands it the owed record.
func TestUnstoredTemplatesKeepTheNewestAndTheEnrollment(t *testing.T) {
	var us unstoredTemplates
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	enrolled, adapted, newest := &biometrics.Template{Windows: 1}, &biometrics.Template{Windows: 2}, &biometrics.Template{Windows: 3}
	if us.waiting("ada") {
		t.Fatal("waiting before anything was kept")
	}
	us.keep("ada", &unstoredTemplate{t: enrolled, enrolled: true, session: "s1", since: now}, now)
	us.keep("ada", &unstoredTemplate{t: adapted, since: now.Add(time.Minute)}, now.Add(time.Second))
	if due := us.due(now.Add(time.Second)); len(due) != 0 {
		t.Fatalf("due before its backoff: %v", due)
	}
	due := us.due(now.Add(time.Minute))
	u := due["ada"]
	if len(due) != 1 || u.t != adapted || !u.enrolled || u.session != "s1" || !u.since.Equal(now) || u.tries != 2 {
		t.Fatalf("due = %+v, want the adapted template owing the enrollment's record, since the consent, after 2 tries", u)
	}
	if !us.waiting("ada") || us.count() != 1 {
		t.Fatal("a template being written does not hold newer ones back")
	}
	us.keep("ada", &unstoredTemplate{t: newest}, now.Add(time.Minute))
	us.failed("ada", u, now.Add(time.Minute))
	next := us.due(now.Add(time.Hour))["ada"]
	if next == nil || next.t != newest || !next.enrolled || next.session != "s1" {
		t.Fatalf("after a failed write with a newer template kept: %+v, want the newest owing the enrollment's record", next)
	}
	us.wrote("ada")
	if us.waiting("ada") || us.count() != 0 {
		t.Fatal("a written template is still held")
	}
}

// TestStartFitsTheModelFromTheStoredTemplates: a node that starts scores
// its first streams against a model of the people it just loaded. Left to
// the engine's coalescing of refits, its model was fitted from the first
// template alone (none at all without a prior) until a refit a second to
// 10 s later, depending on the population.
func TestStartFitsTheModelFromTheStoredTemplates(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := natstest.RunServer(t)
	ts := openTemplates(t, srv.ClientURL())
	const people = 12
	for i := range people {
		ws, err := biometrics.Windows(synth.NewPerson(int64(100+i)).Session(1).Frames(20*72, 72), biometrics.Config{})
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := biometrics.NewTemplate(ws, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.Put(ctx, fmt.Sprintf("avatar-%d", i), tmpl); err != nil {
			t.Fatal(err)
		}
	}
	engine, err := biometrics.NewEngine(biometrics.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{log: testlog.New(t), engine: engine, templates: ts, deps: Deps{Clock: clock.Or(nil)},
		reg: registry{sessions: map[string]*sessionStream{}, known: map[string]bool{}}}
	s.m = newMetrics(prometheus.NewRegistry(), s)
	if err := s.Start(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	m := engine.Model()
	if m == nil {
		t.Fatalf("no model once the node loaded its %d people", people)
	}
	if got := m.CohortSize(); got != people {
		t.Fatalf("the model's cohort is %d people once the node loaded its %d", got, people)
	}
}
