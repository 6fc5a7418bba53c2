package peerbackground

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/notekey"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/store/storetest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// decision is one decision the exchange recorded.
type decision struct {
	actor, action string
	allowed       bool
	why           string
}

// decisions collects what the exchange hands the audit log, in order.
type decisions struct {
	mu  sync.Mutex
	all []decision
}

func (d *decisions) AllowQueued(_ *http.Request, actor, action, _, reason string, _ map[string]any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.all = append(d.all, decision{actor: actor, action: action, allowed: true, why: reason})
}

func (d *decisions) DenyQueued(_ *http.Request, actor, action, _ string, cause error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.all = append(d.all, decision{actor: actor, action: action, why: cause.Error()})
}

func (d *decisions) last() decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.all) == 0 {
		return decision{}
	}
	return d.all[len(d.all)-1]
}

// side is one realm's node in a test: its engine, its exchange and, when
// it serves, its URL.
type side struct {
	realm, node string
	seed        []byte
	engine      *biometrics.Engine
	svc         *Service
	reg         *prometheus.Registry
	audit       *decisions
	url         string
	srv         *httptest.Server
}

// seedOf is a node's key seed, fixed by its name.
func seedOf(realm, node string) []byte {
	s := sha256.Sum256([]byte(realm + "/" + node))
	return s[:]
}

// vkeyOf is the verifier key a node of realm named node signs with.
func vkeyOf(t testing.TB, realm, node string) string {
	t.Helper()
	_, vkey, err := notekey.Keys(KeyName(realm, node), seedOf(realm, node))
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// realmSeedOf is a realm's background key seed, fixed by its name: in a
// realm, biometrics.ExchangeSeed of the template key every node holds.
func realmSeedOf(realm string) []byte {
	s := sha256.Sum256([]byte("realm key of " + realm))
	return s[:]
}

// realmVkeyOf is the verifier key of realm's own background key.
func realmVkeyOf(t testing.TB, realm string) string {
	t.Helper()
	_, vkey, err := notekey.Keys(RealmKeyName(realm), realmSeedOf(realm))
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// people returns n synthetic people's enrollment templates.
func people(t testing.TB, first, n int) map[string]*biometrics.Template {
	t.Helper()
	out := map[string]*biometrics.Template{}
	for i := range n {
		seed := int64(first + i)
		ws, err := biometrics.Windows(synth.NewPerson(seed).Session(1).Frames(20*72, 72), biometrics.Config{})
		if err != nil {
			t.Fatal(err)
		}
		tm, err := biometrics.NewTemplate(ws, time.Unix(1_800_000_000, 0))
		if err != nil {
			t.Fatal(err)
		}
		// Ids by position: people(t, 1, 7) is people(t, 1, 6) and one more.
		out[fmt.Sprintf("person-%c", 'a'+i)] = tm
	}
	return out
}

// newStore is a realm's store: a fresh single-node NATS server's.
func newStore(t testing.TB) *store.Store {
	t.Helper()
	return storetest.New(t, store.Config{Prefix: "zr", RecordKey: bytes.Repeat([]byte{9}, store.RecordKeySize)})
}

// newSide makes a node of realm, on a store of its own, with the people
// given and the exchange configured by cfg; serve puts its route behind a
// test server.
func newSide(t *testing.T, realm, node string, cfg Config, pop map[string]*biometrics.Template, c clock.Clock, serve bool) *side {
	t.Helper()
	return newSideOn(t, newStore(t), realm, node, cfg, pop, c, serve)
}

// newSideOn is newSide on a store the realm's other nodes share.
func newSideOn(t *testing.T, st *store.Store, realm, node string, cfg Config, pop map[string]*biometrics.Template, c clock.Clock, serve bool, tweak ...func(*Deps)) *side {
	t.Helper()
	engine, err := biometrics.NewEngine(biometrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for id, tm := range pop {
		engine.SetTemplate(id, tm)
	}
	s := &side{realm: realm, node: node, seed: seedOf(realm, node), engine: engine, reg: prometheus.NewRegistry(), audit: &decisions{}}
	deps := Deps{
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Realm: realm, Node: node, Seed: s.seed,
		Engine: engine, Store: st, Audit: s.audit, Registry: s.reg, Clock: c,
	}
	for _, f := range tweak {
		f(&deps)
	}
	s.svc, err = New(context.Background(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if serve {
		var ready atomic.Bool
		ready.Store(true)
		e := edge.New(edge.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)), ready.Load, prometheus.NewRegistry())
		mux := http.NewServeMux()
		NewAPI(e, func() *Service { return s.svc }).Routes(mux)
		srv := httptest.NewServer(e.Instrument(mux))
		t.Cleanup(srv.Close)
		s.url, s.srv = srv.URL, srv
	}
	return s
}

// maxRelDiff is the largest difference between two backgrounds' sums,
// relative to the larger magnitude of the two.
func maxRelDiff(a, b *biometrics.Background) float64 {
	worst := 0.0
	for _, pair := range [][2][]float64{{a.SumMean, b.SumMean}, {a.SumMeanOuter, b.SumMeanOuter}, {a.SumWithin, b.SumWithin}} {
		if len(pair[0]) != len(pair[1]) {
			return math.Inf(1)
		}
		for i := range pair[0] {
			x, y := pair[0][i], pair[1][i]
			if d := math.Abs(x-y) / max(math.Abs(x), math.Abs(y), 1e-300); d > worst {
				worst = d
			}
		}
	}
	return worst
}

// post sends a request body to a side's route and returns the status and
// the body of the answer.
func post(t testing.TB, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url+SharePath, "text/plain; charset=utf-8", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// peopleGauge reads zerorealm_biometrics_peer_people for peer.
func peopleGauge(t testing.TB, s *side, peer string) float64 {
	t.Helper()
	var m dto.Metric
	if err := s.svc.m.people.WithLabelValues(peer).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// fetchOnce fetches the side's only peer once.
func fetchOnce(s *side) error {
	return s.svc.fetch(context.Background(), s.svc.peers[0])
}

func isRefused(err error) bool { return errors.Is(err, ErrShareRefused) }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// scatterFor is one person's statistics: a few windows around mu.
func scatterFor(mu []float64) *biometrics.Scatter {
	s := &biometrics.Scatter{}
	for k := range 4 {
		f := biometrics.Features{Core: make([]float64, len(mu))}
		for i := range mu {
			f.Core[i] = mu[i] + 0.01*float64((i+k)%3)
		}
		s.Add(&f)
	}
	return s
}
