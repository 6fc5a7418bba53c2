package peerbackground

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/mod/sumdb/note"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/notekey"
)

// TestPeerWhitensWithWhatItsReaderKeyMayRead: a node of realm B fetches
// realm A's statistics, signed by a key of A's it pinned, and whitens
// with exactly the sums A's node computed; A records the share as allowed
// for B's key.
func TestPeerWhitensWithWhatItsReaderKeyMayRead(t *testing.T) {
	a := newSide(t, "a.example", "n1", Config{Readers: []string{vkeyOf(t, "b.example", "n1")}}, people(t, 1, 6), nil, true)
	b := newSide(t, "b.example", "n1", Config{Peers: []Peer{{URL: a.url, Keys: []string{vkeyOf(t, "a.example", "n1")}}}}, nil, nil, false)

	if err := fetchOnce(b); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	want, _, err := a.engine.SharePopulation(0)
	if err != nil {
		t.Fatal(err)
	}
	// A sums its people in map order, so two of its shares may differ in
	// the last bits.
	got := b.engine.PeerBackground("a.example")
	if got == nil || got.People != 6 {
		t.Fatalf("B whitens with %v people; want A's 6", got)
	}
	if d := maxRelDiff(got, want); d > 1e-12 {
		t.Fatalf("B's copy of A's sums differs from A's own by %g", d)
	}
	if g := peopleGauge(t, b, "a.example"); g != 6 {
		t.Errorf("zerorealm_biometrics_peer_people = %v, want 6", g)
	}
	if d := a.audit.last(); !d.allowed || d.actor != KeyName("b.example", "n1") || d.action != auditAction {
		t.Errorf("A recorded %+v; want an allowed %s by B's key", d, auditAction)
	}
}

// signedRequest is a request to realm at, signed by the key of realm's
// node named node.
func signedRequest(t testing.TB, r Request, realm, node string) []byte {
	t.Helper()
	signer, _, err := notekey.Signer(KeyName(realm, node), seedOf(realm, node))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: r.Text()}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestRequestsAreRefusedWithTheirReason: whatever is not a fresh request
// of a reader for this realm gets its reason, is recorded as denied, and
// shares nothing.
func TestRequestsAreRefusedWithTheirReason(t *testing.T) {
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	c := clock.NewManual(now)
	a := newSide(t, "a.example", "n1", Config{Readers: []string{vkeyOf(t, "b.example", "n1")}}, people(t, 1, 6), c, true)
	fresh := func() Request { return newRequest("a.example", now) }

	replayed := signedRequest(t, fresh(), "b.example", "n1")
	if status, body := post(t, a.url, replayed); status != http.StatusOK {
		t.Fatalf("a fresh request: %d %s", status, body)
	}
	tampered := signedRequest(t, fresh(), "b.example", "n1")
	tampered = bytes.Replace(tampered, []byte("realm a.example"), []byte("realm a.exampl3"), 1)
	badText := func() []byte {
		signer, _, _ := notekey.Signer(KeyName("b.example", "n1"), seedOf("b.example", "n1"))
		msg, _ := note.Sign(&note.Note{Text: "zerorealm/background-request/v1\nrealm a.example\n"}, signer)
		return msg
	}()
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		says   string
	}{
		{"signed by a realm that is not a reader", signedRequest(t, fresh(), "c.example", "n1"), 403, "none of them a key this realm shares its background with"},
		{"signed by another node of the reader's realm", signedRequest(t, fresh(), "b.example", "n2"), 403, "none of them a key"},
		{"changed after it was signed", tampered, 403, "does not verify"},
		{"not a signed note", []byte("hello\n"), 400, "C2SP signed note"},
		{"a reader's note that is not a request", badText, 400, "lines after"},
		{"for another realm", signedRequest(t, newRequest("z.example", now), "b.example", "n1"), 403, `is for realm`},
		{"three minutes old", signedRequest(t, newRequest("a.example", now.Add(-3*time.Minute)), "b.example", "n1"), 403, "more than 2m0s"},
		{"three minutes ahead", signedRequest(t, newRequest("a.example", now.Add(3*time.Minute)), "b.example", "n1"), 403, "more than 2m0s"},
		{"sent again", replayed, 403, "answered before"},
		{"too large", bytes.Repeat([]byte("x"), maxRequestBytes+1), 413, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, a.url, tc.body)
			if status != tc.status || !strings.Contains(body, tc.says) {
				t.Errorf("answer %d %s; want %d saying %q", status, body, tc.status, tc.says)
			}
			if !strings.Contains(body, "application/problem+json") && !strings.Contains(body, `"detail"`) {
				t.Errorf("answer is not a problem: %s", body)
			}
			if tc.status == 403 {
				if d := a.audit.last(); d.allowed || d.action != auditAction || !strings.Contains(d.why, tc.says) {
					t.Errorf("recorded %+v; want a denial saying %q", d, tc.says)
				}
			}
		})
	}

	// A node that knows fewer than k people shares nothing, and says so.
	small := newSide(t, "a.example", "n3", Config{Readers: []string{vkeyOf(t, "b.example", "n1")}}, people(t, 1, 4), c, true)
	status, body := post(t, small.url, signedRequest(t, fresh(), "b.example", "n1"))
	if status != http.StatusConflict || !strings.Contains(body, "4 people, need 5") {
		t.Errorf("a node of 4 people answered %d %s; want 409 naming 4 of 5", status, body)
	}
}

// TestFetchRefusesAShareItCannotTrust: an answer that is not the pinned
// peer's signed answer to this node's own request changes nothing.
func TestFetchRefusesAShareItCannotTrust(t *testing.T) {
	readers := Config{Readers: []string{vkeyOf(t, "b.example", "n1"), vkeyOf(t, "b.example", "n2")}}
	a := newSide(t, "a.example", "n1", readers, people(t, 1, 6), nil, true)

	// Between B and A, something that may change A's answers.
	var alter func(req *http.Request, answer []byte) []byte
	relay := relayTo(t, a.url, func(req *http.Request, answer []byte) []byte { return alter(req, answer) })

	var kept []byte // an answer of A's to another request of B's
	for _, tc := range []struct {
		name   string
		pinned string
		alter  func(req *http.Request, answer []byte) []byte
		says   string
	}{
		{"signed by a key not pinned", vkeyOf(t, "a.example", "n2"), nil, "signed by no key pinned"},
		{"statistics changed on the way", "", func(_ *http.Request, answer []byte) []byte {
			i := bytes.Index(answer, []byte("statistics ")) + len("statistics ") + 100
			answer[i] ^= 'A' ^ 'B'
			return answer
		}, "invalid signature"},
		{"an answer to another request", "", func(_ *http.Request, answer []byte) []byte { return kept }, "answers another request"},
		{"no answer but an error page", "", func(_ *http.Request, _ []byte) []byte { return []byte("<html>oops</html>") }, "malformed note"},
		{"statistics no population gives, signed with A's stolen key", "", indefiniteShare(t), "statistics no population of people gives"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pinned := tc.pinned
			if pinned == "" {
				pinned = vkeyOf(t, "a.example", "n1")
			}
			alter = func(_ *http.Request, answer []byte) []byte { return answer }
			if tc.alter != nil {
				alter = tc.alter
			}
			b := newSide(t, "b.example", "n1", Config{Peers: []Peer{{URL: relay.URL, Keys: []string{pinned}}}}, nil, nil, false)
			err := fetchOnce(b)
			if !isRefused(err) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("fetch: %v; want a refusal saying %q", err, tc.says)
			}
			if got := b.engine.PeerBackground("a.example"); got != nil {
				t.Errorf("B whitens with a refused share of %d people", got.People)
			}
			if g := peopleGauge(t, b, "a.example"); g != 0 {
				t.Errorf("zerorealm_biometrics_peer_people = %v after a refusal", g)
			}
		})
		if kept == nil {
			// Keep one genuine answer, to B's n1, for the replay above.
			keeper := newSide(t, "b.example", "n1", Config{Peers: []Peer{{URL: a.url, Keys: []string{vkeyOf(t, "a.example", "n1")}}}}, nil, nil, false)
			r := newRequest("a.example", time.Now())
			msg, err := note.Sign(&note.Note{Text: r.Text()}, keeper.svc.signers...)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Post(a.url+SharePath, "text/plain", bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			kept, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}

	// A share for another node of B's realm is not this node's.
	b2 := newSide(t, "b.example", "n2", Config{Peers: []Peer{{URL: relay.URL, Keys: []string{vkeyOf(t, "a.example", "n1")}}}}, nil, nil, false)
	r := newRequest("a.example", time.Now())
	msg, _ := note.Sign(&note.Note{Text: r.Text()}, b2.svc.signers...)
	resp, err := http.Post(a.url+SharePath, "text/plain", bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	forN2, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b1 := newSide(t, "b.example", "n1", Config{Peers: []Peer{{URL: a.url, Keys: []string{vkeyOf(t, "a.example", "n1")}}}}, nil, nil, false)
	if _, err := b1.svc.openShare(b1.svc.peers[0], r, forN2); !isRefused(err) || !strings.Contains(err.Error(), "is for") {
		t.Errorf("n1 took a share for n2: %v", err)
	}
}

// TestPeerStatisticsStopCountingOnceTooOld: a peer that stops answering
// keeps counting until MaxAge has passed since its last share, then
// counts no more.
func TestPeerStatisticsStopCountingOnceTooOld(t *testing.T) {
	c := clock.NewManual(time.Now())
	a := newSide(t, "a.example", "n1", Config{Readers: []string{vkeyOf(t, "b.example", "n1")}}, people(t, 1, 6), c, true)
	b := newSide(t, "b.example", "n1", Config{Every: time.Minute, MaxAge: 2 * time.Minute, Peers: []Peer{{URL: a.url, Keys: []string{vkeyOf(t, "a.example", "n1")}}}}, nil, c, false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.svc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("not %s after 10s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait("fetched", func() bool { return b.engine.PeerBackground("a.example") != nil })
	fetchedAt := c.Now()
	// A goes quiet: every fetch from now on fails.
	a.srv.Close()
	for b.engine.PeerBackground("a.example") != nil {
		if err := c.WaitArmed(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if age := c.Now().Sub(fetchedAt); age > 3*time.Minute {
			t.Fatalf("still counted %s after the last share; MaxAge is 2m", age)
		}
		c.Advance(20 * time.Second)
		// The fetch that timer starts fails at once (nothing listens);
		// the next wait is armed after it.
		wait("a failed fetch", func() bool { return c.Armed() == 1 || b.engine.PeerBackground("a.example") == nil })
	}
	if age := c.Now().Sub(fetchedAt); age <= 2*time.Minute {
		t.Errorf("dropped %s after the last share, before MaxAge (2m)", age)
	}
	// The gauge follows the statistics from the same goroutine.
	wait("zerorealm_biometrics_peer_people back to 0", func() bool { return peopleGauge(t, b, "a.example") == 0 })
}

// TestNodesOfARealmShareOnlyPopulationsKApart: the nodes of one realm
// keep the people of its last share in their store, so a reader that
// reaches two nodes whose views differ by one person cannot subtract one
// share from the other: a node shares only the same people as the realm's
// last share, or people that differ from them by at least k.
func TestNodesOfARealmShareOnlyPopulationsKApart(t *testing.T) {
	st := newStore(t)
	readers := Config{Readers: []string{vkeyOf(t, "b.example", "n1")}}
	six := newSideOn(t, st, "a.example", "n1", readers, people(t, 1, 6), nil, true)
	seven := newSideOn(t, st, "a.example", "n2", readers, people(t, 1, 7), nil, true)
	eleven := newSideOn(t, st, "a.example", "n3", readers, people(t, 1, 11), nil, true)
	ask := func(s *side) (int, string) {
		return post(t, s.url, signedRequest(t, newRequest("a.example", time.Now()), "b.example", "n1"))
	}
	for _, step := range []struct {
		node   *side
		status int
		says   string
	}{
		{six, 200, "people 6"},
		{six, 200, "people 6"}, // the same people again
		{seven, 409, "1 people changed since this realm's last share, need 5"},
		{eleven, 200, "people 11"},
		{seven, 409, "4 people changed"},
		{six, 200, "people 6"},
	} {
		status, body := ask(step.node)
		if status != step.status || !strings.Contains(body, step.says) {
			t.Fatalf("node %s answered %d %.200s; want %d saying %q", step.node.node, status, body, step.status, step.says)
		}
	}
}

// TestAFloodOfGarbageIsNotAFloodOfRecords: the route is open to the
// network and each refused request is an audit record, so one client
// address is paced before its request is even read.
func TestAFloodOfGarbageIsNotAFloodOfRecords(t *testing.T) {
	a := newSide(t, "a.example", "n1", Config{Readers: []string{vkeyOf(t, "b.example", "n1")}}, nil, nil, true)
	paced := 0
	start := time.Now()
	for range 3 * addressBurst {
		status, body := post(t, a.url, signedRequest(t, newRequest("a.example", time.Now()), "c.example", "n1"))
		switch status {
		case http.StatusForbidden:
		case http.StatusTooManyRequests:
			paced++
			if !strings.Contains(body, "too many background requests from your address") {
				t.Fatalf("429 without its reason: %s", body)
			}
		default:
			t.Fatalf("answer %d %s; want 403 or 429", status, body)
		}
	}
	a.audit.mu.Lock()
	records := len(a.audit.all)
	a.audit.mu.Unlock()
	// The bucket refills at addressRate a second while the loop runs.
	allowed := addressBurst + int(time.Since(start).Seconds()*addressRate) + 1
	if paced == 0 || records > allowed {
		t.Errorf("%d requests paced, %d audit records of %d requests; want at most %d records", paced, records, 3*addressBurst, allowed)
	}
}

// TestNotesStillOpenAfterARotation: a node whose ring rotated signs with
// its new key and the one before, so the realm that pinned only the old
// key still takes its requests and its shares until it pins the new one.
func TestNotesStillOpenAfterARotation(t *testing.T) {
	rotated := func(d *Deps) { d.Seed, d.PreviousSeed = seedOf(d.Realm, d.Node+"-next"), d.Seed }
	oldB := vkeyOf(t, "b.example", "n1")
	oldA := vkeyOf(t, "a.example", "n1")
	// A rotated; B pinned A's old key only. B rotated; A names B's old
	// key only.
	a := newSideOn(t, newStore(t), "a.example", "n1", Config{Readers: []string{oldB}}, people(t, 1, 6), nil, true, rotated)
	b := newSideOn(t, newStore(t), "b.example", "n1", Config{Peers: []Peer{{URL: a.url, Keys: []string{oldA}}}}, nil, nil, false, rotated)
	if a.svc.VerifierKey() == oldA || len(a.svc.signers) != 2 {
		t.Fatalf("A signs with %d keys, the active one %q", len(a.svc.signers), a.svc.VerifierKey())
	}
	if err := fetchOnce(b); err != nil {
		t.Fatalf("fetch across two rotations: %v", err)
	}
	if got := b.engine.PeerBackground("a.example"); got == nil || got.People != 6 {
		t.Fatalf("B whitens with %v after the rotations", got)
	}
	// A realm that pinned neither key takes nothing.
	c := newSideOn(t, newStore(t), "b.example", "n1", Config{Peers: []Peer{{URL: a.url, Keys: []string{vkeyOf(t, "a.example", "n9")}}}}, nil, nil, false, rotated)
	if err := fetchOnce(c); !isRefused(err) {
		t.Errorf("a share signed by neither pinned key: %v", err)
	}
}

// indefiniteShare re-signs an answer of a.example's n1, with its key as a
// thief would have it, after giving its statistics a direction of
// negative variance: features 0 and 1 "correlated" ten times beyond what
// their variances allow.
func indefiniteShare(t *testing.T) func(*http.Request, []byte) []byte {
	skey, vkey, err := notekey.Keys(KeyName("a.example", "n1"), seedOf("a.example", "n1"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return func(_ *http.Request, answer []byte) []byte {
		n, err := note.Open(answer, note.VerifierList(verifier))
		if err != nil {
			t.Errorf("A's answer: %v", err)
			return answer
		}
		share, err := ParseShare(n.Text)
		if err != nil {
			t.Errorf("A's share: %v", err)
			return answer
		}
		st, d := share.Statistics, biometrics.NumCoreFeatures
		c := 10 * math.Sqrt(st.SumWithin[0]*st.SumWithin[d+1])
		st.SumWithin[1], st.SumWithin[d] = c, c
		text, err := share.Text()
		if err != nil {
			t.Errorf("the tampered share: %v", err)
			return answer
		}
		msg, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			t.Errorf("signing the tampered share: %v", err)
			return answer
		}
		return msg
	}
}

// TestRefusedSharesAreCountedApartFromFailures: an operator is told a
// peer sent what this node cannot trust (outcome refused), apart from a
// peer that gave no share (outcome failed).
func TestRefusedSharesAreCountedApartFromFailures(t *testing.T) {
	a := newSide(t, "a.example", "n1", Config{Readers: []string{vkeyOf(t, "b.example", "n1")}}, people(t, 1, 6), nil, true)
	evil := relayTo(t, a.url, indefiniteShare(t))
	for _, tc := range []struct {
		name, url, outcome string
	}{
		{"a share signed with a stolen key, of statistics no population gives", evil.URL, "refused"},
		{"an answer without a share (B is not a reader of A's n2)", newSide(t, "a.example", "n2", Config{}, people(t, 1, 6), nil, true).url, "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newSide(t, "b.example", "n1", Config{Peers: []Peer{{URL: tc.url, Keys: []string{vkeyOf(t, "a.example", "n1"), vkeyOf(t, "a.example", "n2")}}}}, nil, nil, false)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { b.svc.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })
			count := func(outcome string) float64 {
				var m dto.Metric
				if err := b.svc.m.fetches.WithLabelValues("a.example", outcome).Write(&m); err != nil {
					t.Fatal(err)
				}
				return m.GetCounter().GetValue()
			}
			deadline := time.Now().Add(10 * time.Second)
			for count("refused")+count("failed") == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no fetch ended within 10s")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if count(tc.outcome) != 1 || count("ok") != 0 {
				t.Errorf("fetches: refused %v, failed %v, ok %v; want one %s", count("refused"), count("failed"), count("ok"), tc.outcome)
			}
			if b.engine.PeerBackground("a.example") != nil {
				t.Error("B whitens with what it should have refused")
			}
		})
	}
}

// relayTo serves what target answers to a share request, passed through
// alter: something between two realms.
func relayTo(t *testing.T, target string, alter func(req *http.Request, answer []byte) []byte) *httptest.Server {
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		resp, err := http.Post(target+SharePath, "text/plain; charset=utf-8", req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(alter(req, answer))
	}))
	t.Cleanup(relay.Close)
	return relay
}

// TestAPeerPinsOneKeyForEveryNodeOfARealm: each realm pins the other's
// realm key alone. Every node of realm A answers, and every node of realm
// B is a reader, the nodes either realm adds later included; a node that
// signs with its own key only is not taken for its realm.
func TestAPeerPinsOneKeyForEveryNodeOfARealm(t *testing.T) {
	withRealmKey := func(realm string) func(*Deps) {
		return func(d *Deps) { d.RealmSeed = realmSeedOf(realm) }
	}
	stA, stB := newStore(t), newStore(t)
	readers := Config{Readers: []string{realmVkeyOf(t, "b.example")}}
	a1 := newSideOn(t, stA, "a.example", "n1", readers, people(t, 1, 6), nil, true, withRealmKey("a.example"))
	a2 := newSideOn(t, stA, "a.example", "n2", readers, people(t, 1, 6), nil, true, withRealmKey("a.example"))
	if a1.svc.RealmVerifierKey() != a2.svc.RealmVerifierKey() || a1.svc.RealmVerifierKey() == a1.svc.VerifierKey() {
		t.Fatalf("the nodes of a realm verify as %q and %q, want one realm key apart from the node's %q",
			a1.svc.RealmVerifierKey(), a2.svc.RealmVerifierKey(), a1.svc.VerifierKey())
	}
	peer := func(url string) Config {
		return Config{Peers: []Peer{{URL: url, Keys: []string{realmVkeyOf(t, "a.example")}}}}
	}
	for _, c := range []struct {
		reader *side
		from   *side
	}{
		{newSideOn(t, stB, "b.example", "m1", peer(a1.url), nil, nil, false, withRealmKey("b.example")), a1},
		{newSideOn(t, stB, "b.example", "m2", peer(a2.url), nil, nil, false, withRealmKey("b.example")), a2},
	} {
		if err := fetchOnce(c.reader); err != nil {
			t.Fatalf("%s fetching from %s: %v", c.reader.node, c.from.node, err)
		}
		if got := c.reader.engine.PeerBackground("a.example"); got == nil || got.People != 6 {
			t.Fatalf("%s whitens with %v; want A's 6 people", c.reader.node, got)
		}
		if d := c.from.audit.last(); !d.allowed || d.actor != RealmKeyName("b.example") {
			t.Errorf("%s recorded %+v; want the share allowed for B's realm key", c.from.node, d)
		}
	}

	// A node of B that signs with its own key only is no reader of A's.
	loner := newSideOn(t, stB, "b.example", "m3", peer(a1.url), nil, nil, false)
	if err := fetchOnce(loner); err == nil || !errors.Is(err, ErrNoShare) {
		t.Fatalf("a node without B's realm key fetched A's share: %v", err)
	}
	if d := a1.audit.last(); d.allowed || !strings.Contains(d.why, "none of them a key this realm shares its background with") {
		t.Errorf("A recorded %+v; want a refusal naming the unknown key", d)
	}
}

// TestRealmNotesStillOpenAfterATemplateKeyRotation: both realms rotated
// their template keys, and so their realm keys, while each peer still
// pins the other's realm key from before. A realm signs with the realm
// keys of its retired template keys too, so the exchange goes on; the
// control, a realm that does not, is refused.
func TestRealmNotesStillOpenAfterATemplateKeyRotation(t *testing.T) {
	rotated := func(realm string, keepRetired bool) func(*Deps) {
		return func(d *Deps) {
			d.RealmSeed = realmSeedOf(realm + " after the rotation")
			if keepRetired {
				d.RetiredRealmSeeds = [][]byte{realmSeedOf(realm)}
			}
		}
	}
	readers := Config{Readers: []string{realmVkeyOf(t, "b.example")}}
	a := newSideOn(t, newStore(t), "a.example", "n1", readers, people(t, 1, 6), nil, true, rotated("a.example", true))
	if a.svc.RealmVerifierKey() == realmVkeyOf(t, "a.example") {
		t.Fatal("A's realm key did not change with its template key")
	}
	pinsOld := Config{Peers: []Peer{{URL: a.url, Keys: []string{realmVkeyOf(t, "a.example")}}}}
	b := newSideOn(t, newStore(t), "b.example", "m1", pinsOld, nil, nil, false, rotated("b.example", true))
	if err := fetchOnce(b); err != nil {
		t.Fatalf("fetch across both realms' template key rotations: %v", err)
	}
	if got := b.engine.PeerBackground("a.example"); got == nil || got.People != 6 {
		t.Fatalf("B whitens with %v after the rotations; want A's 6 people", got)
	}

	// The controls, each side without its retired realm key.
	dropped := newSideOn(t, newStore(t), "b.example", "m2", pinsOld, nil, nil, false, rotated("b.example", false))
	if err := fetchOnce(dropped); err == nil {
		t.Fatal("a node of B that no longer signs with B's old realm key fetched from A, which names only that key a reader")
	}
	aDropped := newSideOn(t, newStore(t), "a.example", "n2", readers, people(t, 1, 6), nil, true, rotated("a.example", false))
	pinsOldOfN2 := Config{Peers: []Peer{{URL: aDropped.url, Keys: []string{realmVkeyOf(t, "a.example")}}}}
	if err := fetchOnce(newSideOn(t, newStore(t), "b.example", "m3", pinsOldOfN2, nil, nil, false, rotated("b.example", true))); !isRefused(err) {
		t.Fatalf("a share signed by A's new realm key only, for a B that pins the old one: %v; want it refused", err)
	}
}
