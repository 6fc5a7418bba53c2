package decide

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/store/storetest"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
)

const testNode = "n1"

// openService binds a service to a real audit log on an embedded
// JetStream, and returns both with the store.
func openService(t *testing.T) (*Service, *audit.Log, *store.Store) {
	t.Helper()
	st := storetest.New(t, store.Config{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	al, err := audit.Open(context.Background(), st, audit.Config{Node: testNode, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = al.Close(context.Background()) })
	s := New()
	if err := s.Bind(Deps{Log: log, Audit: al}); err != nil {
		t.Fatal(err)
	}
	return s, al, st
}

// stored is the first event of the stored chain (not the queue) that
// matches, if any.
func stored(t *testing.T, st *store.Store, matches func(audit.Event) bool) (audit.Event, bool) {
	t.Helper()
	ctx := context.Background()
	stream, err := st.Stream(ctx, audit.StreamConfig)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLast(ctx, audit.Subject(testNode))
	if err != nil {
		return audit.Event{}, false
	}
	for seq := uint64(1); seq <= last.Seq; seq++ {
		m, err := stream.Get(ctx, seq)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(m.Data), "\n") {
			var ev audit.Event
			if json.Unmarshal([]byte(line), &ev) == nil && matches(ev) {
				return ev, true
			}
		}
	}
	return audit.Event{}, false
}

func withAction(action string) func(audit.Event) bool {
	return func(ev audit.Event) bool { return ev.Action == action }
}

func testEvent(action string) audit.Event {
	return audit.Event{Actor: "realm:test", Action: action, Resource: "test", Outcome: audit.Allow, Reasons: []string{"test"}}
}

// eventually waits, with a generous limit, for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRecordAndWaitIsStoredOnReturn: a waited-for record is in the stored
// chain as soon as the call returns, even when the caller's context was
// already cancelled (the client hung up), and a record that cannot be
// stored is an error the caller sees.
func TestRecordAndWaitIsStoredOnReturn(t *testing.T) {
	s, al, st := openService(t)
	if err := s.RecordAndWait(context.Background(), testEvent("TestWaited")); err != nil {
		t.Fatalf("RecordAndWait = %v, want nil", err)
	}
	if _, ok := stored(t, st, withAction("TestWaited")); !ok {
		t.Fatal("RecordAndWait returned before its event was stored")
	}
	hungUp, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.RecordAndWait(hungUp, testEvent("TestWaitedHungUp")); err != nil {
		t.Fatalf("RecordAndWait with a cancelled request context = %v, want nil", err)
	}
	if _, ok := stored(t, st, withAction("TestWaitedHungUp")); !ok {
		t.Fatal("RecordAndWait with a cancelled request context returned before its event was stored")
	}

	if err := al.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAndWait(context.Background(), testEvent("TestWaitedClosed")); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("RecordAndWait with the audit log closed = %v, want %v", err, audit.ErrClosed)
	}
}

// TestRecordQueuedQueues: a queued record reaches the stored chain without
// the caller waiting, also after the caller's context ends; with the audit
// log closed the caller goes on (the failure is logged, not returned).
func TestRecordQueuedQueues(t *testing.T) {
	s, al, st := openService(t)
	hungUp, cancel := context.WithCancel(context.Background())
	cancel()
	before := al.Stats().Recorded
	s.RecordQueued(hungUp, testEvent("TestQueued"))
	if got := al.Stats().Recorded; got <= before {
		t.Fatalf("audit records accepted after RecordQueued = %d, want more than %d", got, before)
	}
	eventually(t, "the queued event is stored", func() bool { _, ok := stored(t, st, withAction("TestQueued")); return ok })

	if err := al.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	failedBefore := al.Stats()
	s.RecordQueued(context.Background(), testEvent("TestQueuedClosed"))
	if after := al.Stats(); after.Recorded != failedBefore.Recorded {
		t.Fatalf("audit records accepted after RecordQueued on a closed log = %d, want %d", after.Recorded, failedBefore.Recorded)
	}
}

// vault is a scene whose policy admits trusted sessions signed in with an
// attested passkey only.
func vault(t *testing.T) *scenes.Scene {
	t.Helper()
	cat, err := scenes.LoadFS(fstest.MapFS{
		"vault/scene.yaml": {Data: []byte("id: vault\nname: Vault\nzones:\n  - id: hall\n    name: Hall\n    min: [0, 0, 0]\n    max: [10, 3, 10]\npolicies:\n  - policies.cedar\n")},
		"vault/policies.cedar": {Data: []byte(`@id("join-vault")
permit (principal is Avatar, action == Action::"JoinScene", resource is Scene)
when { context.trust.state == "trusted" };

@id("attested-authenticators-only")
forbid (principal, action, resource)
unless { context has authenticator && context.authenticator.attested };
`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	sc, ok := cat.Scene("vault")
	if !ok {
		t.Fatal("the vault scene did not load")
	}
	return sc
}

// person is a principal signed in with a passkey, attested or not.
func person(attested bool) edge.Principal {
	id := []byte("cred-1")
	av := &avatar.Avatar{ID: "av-1", Name: "judy", Roles: []string{"visitor"},
		Credentials: []avatar.Credential{{ID: id, Attested: attested, AttestationFormat: "packed"}}}
	return edge.Principal{Avatar: av, Session: session.Session{ID: "s-1", Avatar: av.ID, Credential: base64.RawURLEncoding.EncodeToString(id)}}
}

// TestDecideFollowsPoliciesAndRecords: the answer is the scene's policies'
// on the session's trust and passkey, and its record carries the deciding
// policies, the signals and, for a deny, the reason.
func TestDecideFollowsPoliciesAndRecords(t *testing.T) {
	s, _, st := openService(t)
	sc := vault(t)
	ctx := context.Background()
	join := scenes.SceneUID(sc.ID)
	trusted := trust.Assessment{State: trust.Trusted, Score: 0.9}

	d, err := s.DecideAndWait(ctx, sc, person(true), trusted, scenes.ActionJoinScene, join, nil)
	if err != nil || !d.Allow {
		t.Fatalf("an attested, trusted session joining = %+v, %v; want allowed", d, err)
	}
	ev, ok := stored(t, st, func(ev audit.Event) bool { return ev.Action == scenes.ActionJoinScene && ev.Outcome == audit.Allow })
	if !ok || ev.Actor != "av-1" || !slices.Contains(ev.Policies, "join-vault") || ev.Signals[scenes.ContextTrust] == nil {
		t.Fatalf("the allow on record = %+v (found %v), want the actor, join-vault and the trust signals", ev, ok)
	}

	if d := s.Decide(ctx, sc, person(false), trusted, scenes.ActionJoinScene, join, nil); d.Allow || !slices.Contains(d.Policies, "attested-authenticators-only") {
		t.Fatalf("an unattested session joining = %+v, want a deny by attested-authenticators-only", d)
	}
	if d := s.Decide(ctx, sc, person(true), trust.Assessment{State: trust.StepUp, Score: 0.5}, scenes.ActionJoinScene, join, nil); d.Allow || d.Reason == "" {
		t.Fatalf("a session asked to step up joining = %+v, want a deny with a reason", d)
	}
	eventually(t, "both denies are on record with their reasons", func() bool {
		n := 0
		_, _ = stored(t, st, func(ev audit.Event) bool {
			if ev.Action == scenes.ActionJoinScene && ev.Outcome == audit.Deny && len(ev.Reasons) == 1 && ev.Reasons[0] != "" {
				n++
			}
			return false
		})
		return n == 2
	})
}

// TestSubjectIsWhatDecisionsCarry: the twin commands build their requests
// from Subject; it must be the context and principal Decide uses.
func TestSubjectIsWhatDecisionsCarry(t *testing.T) {
	p := person(true)
	ctx, principal := Subject(p, trust.Assessment{State: trust.Trusted, Score: 0.9})
	authn := authenticatorIn(ctx)
	if authn[scenes.AuthenticatorAttested] != true || authn[scenes.AuthenticatorFormat] != "packed" {
		t.Fatalf("authenticator context = %v, want attested packed", authn)
	}
	if principal.UID.Type != scenes.TypeAvatar || principal.UID.ID != "av-1" || principal.Attrs["name"] != "judy" {
		t.Fatalf("principal = %+v", principal)
	}
	// A session whose credential the avatar does not hold is unattested.
	p.Session.Credential = "not base64!"
	ctx, _ = Subject(p, trust.Assessment{})
	if authn := authenticatorIn(ctx); authn[scenes.AuthenticatorAttested] != false {
		t.Fatalf("authenticator of an unknown credential = %v, want unattested", authn)
	}
}

// authenticatorIn is context.authenticator as a Go record, whether it was
// converted to Cedar once (policy.Value) or not.
func authenticatorIn(ctx map[string]any) map[string]any {
	v := ctx[scenes.ContextAuthenticator]
	if pv, ok := v.(policy.Value); ok {
		v = pv.Go()
	}
	m, _ := v.(map[string]any)
	return m
}

// TestAuthenticatorRecordsAreShared: sessions signed in with passkeys of
// one kind carry one converted record, and a record says what its own
// passkey is (an empty AAGUID is not a zero one).
func TestAuthenticatorRecordsAreShared(t *testing.T) {
	zero := make([]byte, 16)
	a := authenticatorOf(true, "packed", zero, false)
	if _, ok := a.(policy.Value); !ok {
		t.Fatalf("authenticator record %T, want a policy.Value", a)
	}
	if b := authenticatorOf(true, "packed", zero, false); b.(policy.Value).Go().(map[string]any)[scenes.AuthenticatorAAGUID] != hex.EncodeToString(zero) {
		t.Fatalf("zero AAGUID record = %v", b)
	}
	if c := authenticatorOf(true, "packed", nil, false).(policy.Value).Go().(map[string]any); c[scenes.AuthenticatorAAGUID] != "" {
		t.Fatalf("no AAGUID record = %v, want an empty aaguid", c)
	}
	if d := authenticatorOf(false, "packed", zero, true).(policy.Value).Go().(map[string]any); d[scenes.AuthenticatorAttested] != false || d[scenes.AuthenticatorSynced] != true {
		t.Fatalf("unattested synced record = %v", d)
	}
	odd := authenticatorIn(map[string]any{scenes.ContextAuthenticator: authenticatorOf(true, "packed", []byte{1, 2, 3}, false)})
	if odd[scenes.AuthenticatorAAGUID] != "010203" {
		t.Fatalf("odd AAGUID record = %v", odd)
	}
}

// TestAgentWithoutGuardFailsClosed: before the agents guard is bound an
// agent's action is not decided, and nothing is put on record.
func TestAgentWithoutGuardFailsClosed(t *testing.T) {
	s, al, _ := openService(t)
	before := al.Stats().Recorded
	p := person(true)
	p.Agent = &agents.Agent{ID: "agent-1"}
	d, err := s.DecideAgent(context.Background(), vault(t), p, agents.Action{Name: scenes.ActionJoinScene}, scenes.SceneUID("vault"), nil)
	if !errors.Is(err, errNoGuard) || d.Allow {
		t.Fatalf("DecideAgent without a guard = %+v, %v; want %v", d, err, errNoGuard)
	}
	if al.Stats().Recorded != before {
		t.Fatal("a decision that was not taken was put on record")
	}
}

// TestGrantsScene: a delegation grants an action in a scene only when it
// names both.
func TestGrantsScene(t *testing.T) {
	g := &agents.Grant{Actions: []string{scenes.ActionJoinScene}, Resources: []agents.Resource{{Kind: agents.KindScene, ID: "vault"}}}
	if !GrantsScene(g, scenes.ActionJoinScene, "vault") {
		t.Fatal("the granted action in the granted scene was refused")
	}
	if GrantsScene(g, scenes.ActionEnterZone, "vault") || GrantsScene(g, scenes.ActionJoinScene, "foundry") {
		t.Fatal("an action or scene the delegation does not name was granted")
	}
}

func TestBindRefusesMissingDeps(t *testing.T) {
	if err := New().Bind(Deps{}); err == nil {
		t.Fatal("Bind without a logger and an audit log succeeded")
	}
	if err := NewAPI(nil, New()).Bind(APIDeps{}); err == nil {
		t.Fatal("the API bound without its dependencies")
	}
}

// TestAvatarAttrsFollowTheAvatar: an avatar's prepared principal is
// reused while its name and roles stay, and a role given or taken is in
// the next request's principal at once.
func TestAvatarAttrsFollowTheAvatar(t *testing.T) {
	p := person(true)
	p.Avatar.Roles = []string{"visitor"}
	rolesOf := func(p edge.Principal) []any {
		t.Helper()
		roles, _ := avatarEntity(p).Attrs["roles"].([]any)
		return roles
	}
	if r := rolesOf(p); len(r) != 1 || r[0] != "visitor" {
		t.Fatalf("roles %v, want visitor", r)
	}
	p.Avatar.Roles = []string{"visitor", "operator"}
	if r := rolesOf(p); len(r) != 2 || r[1] != "operator" {
		t.Fatalf("roles after a role was given %v, want visitor and operator", r)
	}
	p.Avatar.Roles = nil
	if r := rolesOf(p); len(r) != 0 {
		t.Fatalf("roles after they were taken %v, want none", r)
	}
	p.Avatar.Name = "someone else"
	if name := avatarEntity(p).Attrs["name"]; name != "someone else" {
		t.Fatalf("name after a rename %v", name)
	}
	// The principal decides as its roles say now.
	set, err := policy.Parse("roles.cedar", []byte(`permit (principal, action, resource) when { principal.roles.contains("operator") };`))
	if err != nil {
		t.Fatal(err)
	}
	decide := func() bool {
		t.Helper()
		e := avatarEntity(p)
		d, err := set.Decide(context.Background(), policy.Request{Principal: e.UID, Action: policy.UID{Type: "Action", ID: "Go"},
			Resource: policy.UID{Type: "R", ID: "r"}, Entities: []policy.Entity{e}})
		if err != nil {
			t.Fatal(err)
		}
		return d.Allow
	}
	p.Avatar.Roles = []string{"operator"}
	if !decide() {
		t.Fatal("an operator was refused")
	}
	p.Avatar.Roles = []string{"visitor"}
	if decide() {
		t.Fatal("a former operator was allowed")
	}
}

// TestTrustRecordsFollowTheAssessment: a trust record converted once is
// the record of that very assessment, never of another one seen before,
// and a record of a shape it does not know is left to be converted per
// request.
func TestTrustRecordsFollowTheAssessment(t *testing.T) {
	for range 2 { // the second time from the cache
		for _, a := range []trust.Assessment{
			{State: trust.Trusted, Score: 0.9, PasskeyAge: time.Minute, DeviceAssurance: 0.7},
			{State: trust.Suspended, Score: 0.9, PasskeyAge: time.Minute, DeviceAssurance: 0.7},
			{State: trust.Trusted, Score: 0.4, PasskeyAge: time.Minute, DeviceAssurance: 0.7},
			{State: trust.Trusted, Score: 0.9, PasskeyAge: 2 * time.Minute, DeviceAssurance: 0.7},
			{State: trust.Trusted, Score: 0.9, PasskeyAge: -1},
		} {
			want := a.Context()
			v, ok := trustRecord(a.Context()).(policy.Value)
			if !ok {
				t.Fatalf("trust record of %+v is not converted once", a)
			}
			got, _ := json.Marshal(v)
			wantJSON, _ := json.Marshal(want)
			if string(got) != string(wantJSON) {
				t.Fatalf("trust record %s, want %s", got, wantJSON)
			}
		}
	}
	other := map[string]any{"state": "trusted", "score": 0.9, "biometric": 0.0, "device_assurance": 0.7, "passkey_age_s": int64(3), "new": true}
	if _, ok := trustRecord(other).(map[string]any); !ok {
		t.Fatal("a trust record of another shape was cached")
	}
}

// An agent's context.trust is converted once per state and Cedar decimal
// of its score: a policy reading it sees the trust it is given, never an
// earlier one, and the memo stays bounded.
func TestAgentTrustContextFollowsTheTrust(t *testing.T) {
	set, err := policy.Parse("trust.cedar", []byte(`permit (principal, action, resource)
when { context.trust.state == "trusted" && context.trust.score.greaterThanOrEqual(decimal("0.9")) };`))
	if err != nil {
		t.Fatal(err)
	}
	decide := func(state trust.State, score float64) bool {
		t.Helper()
		d, err := set.Decide(context.Background(), policy.Request{
			Principal: policy.UID{Type: agents.TypeAgent, ID: "ag_1"}, Action: policy.UID{Type: "Action", ID: "Go"},
			Resource: policy.UID{Type: "R", ID: "r"}, Context: map[string]any{scenes.ContextTrust: agentTrustContext(state, score)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return d.Allow
	}
	for i, c := range []struct {
		state trust.State
		score float64
		want  bool
	}{
		{trust.Trusted, 1, true}, {trust.Trusted, 1, true}, {trust.StepUp, 1, false}, {trust.Trusted, 1, true},
		{trust.Trusted, 0.85, false}, {trust.Trusted, 0.89996, true}, {trust.Trusted, 0.899949, false}, {trust.Suspended, 0.95, false},
	} {
		if got := decide(c.state, c.score); got != c.want {
			t.Fatalf("step %d, %s %v: allow %v, want %v", i, c.state, c.score, got, c.want)
		}
	}
	// The value is the same whichever score of one decimal came first.
	a, _ := json.Marshal(agentTrustContext(trust.Trusted, 0.50004))
	b, _ := json.Marshal(agentTrustContext(trust.Trusted, 0.49996))
	if string(a) != string(b) || !strings.Contains(string(a), `"score":0.5`) {
		t.Fatalf("one decimal, two values: %s / %s", a, b)
	}
	for i := range 3 * maxAgentTrustContexts {
		agentTrustContext(trust.Trusted, float64(i)/1e4)
	}
	if n := len(agentTrustContexts.m); n > maxAgentTrustContexts {
		t.Fatalf("memo holds %d, bound %d", n, maxAgentTrustContexts)
	}
	if !decide(trust.Trusted, 0.95) {
		t.Fatal("after the memo filled: a trusted 0.95 refused")
	}
	if _, err := set.Decide(context.Background(), policy.Request{
		Principal: policy.UID{Type: agents.TypeAgent, ID: "ag_1"}, Action: policy.UID{Type: "Action", ID: "Go"},
		Resource: policy.UID{Type: "R", ID: "r"}, Context: map[string]any{scenes.ContextTrust: agentTrustContext(trust.Trusted, math.NaN())},
	}); err == nil {
		t.Fatal("a NaN score was decided")
	}
}
