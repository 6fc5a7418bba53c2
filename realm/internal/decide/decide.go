package decide

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
)

// AuditLog is the node's audit log: Record queues an event, Commit
// returns once it is stored (audit.Log).
type AuditLog interface {
	Record(ctx context.Context, ev audit.Event) error
	Commit(ctx context.Context, ev audit.Event) error
}

// Agents decides an agent's action within its delegation and spends its
// limits once the policies allow it (agents.Guard).
type Agents interface {
	Evaluate(ctx context.Context, a *agents.Agent, act agents.Action) (agents.Decision, error)
	Spend(ctx context.Context, a *agents.Agent, act agents.Action) error
	// Assess is an agent's behavioural trust now.
	Assess(agent string) agents.Assessment
}

// Deps is what the service needs; the composition root binds it once the
// audit log is open.
type Deps struct {
	Log   *slog.Logger
	Audit AuditLog
}

// Service decides and audits for every part of the realm.
type Service struct {
	// deps and agents are bound once during start-up, before the realm
	// reports ready; the calls that read them come after.
	deps   Deps
	agents Agents
}

// New returns a service to bind: the parts made before start-up are given
// it at once.
func New() *Service { return &Service{} }

// Bind gives the service the audit log.
func (s *Service) Bind(deps Deps) error {
	if deps.Log == nil || deps.Audit == nil {
		return errors.New("decide: a logger and an audit log are required")
	}
	s.deps = deps
	return nil
}

// BindAgents gives the service the guard that decides agents' delegations,
// which starts after the parts that decide for people.
func (s *Service) BindAgents(g Agents) { s.agents = g }

// Subject is what every Cedar request of a person's session carries: its
// context (trust and the passkey it signed in with) and the avatar as the
// principal entity.
func Subject(p edge.Principal, a trust.Assessment) (context map[string]any, principal policy.Entity) {
	return policyContext(p, a), avatarEntity(p)
}

// avatarEntity is the Cedar principal for a signed-in avatar, converted to
// Cedar once while its name and roles stay the same (policy.Entity.Prepare):
// a role given or taken makes the next request's principal anew.
func avatarEntity(p edge.Principal) policy.Entity {
	av := p.Avatar
	if c, ok := avatarEntities.get(av.ID); ok && c.name == av.Name && slices.Equal(c.roles, av.Roles) {
		return c.e
	}
	roles := make([]any, len(av.Roles))
	for i, r := range av.Roles {
		roles[i] = r
	}
	e := policy.Entity{
		UID:   policy.UID{Type: scenes.TypeAvatar, ID: av.ID},
		Attrs: map[string]any{"roles": roles, "name": av.Name},
	}
	prepared, err := e.Prepare()
	if err != nil {
		return e // converted per request, and refused there
	}
	avatarEntities.put(av.ID, preparedAvatar{name: av.Name, roles: slices.Clone(av.Roles), e: prepared})
	return prepared
}

// preparedAvatar is an avatar's principal as last prepared, with the name
// and roles it was prepared from.
type preparedAvatar struct {
	name  string
	roles []string
	e     policy.Entity
}

// maxAvatarEntities bounds the avatars whose principal is kept prepared;
// past it the cache is emptied and refills with the avatars that act.
const maxAvatarEntities = 4096

var avatarEntities = newConverted[string, preparedAvatar](maxAvatarEntities)

// policyContext is what every Cedar request of a session carries: its
// trust and the passkey it signed in with.
func policyContext(p edge.Principal, a trust.Assessment) map[string]any {
	authn := unattested
	if id, err := base64.RawURLEncoding.DecodeString(p.Session.Credential); err == nil {
		if c := p.Avatar.Credential(id); c != nil {
			authn = authenticatorOf(c.Attested, c.AttestationFormat, c.AAGUID, c.BackupEligible)
		}
	}
	return map[string]any{scenes.ContextTrust: trustRecord(a.Context()), scenes.ContextAuthenticator: authn}
}

// trustKey is a trust record (trust.Assessment.Context) whose every value
// it holds: a session's trust stays the same from one decision to the next
// but for its passkey's age, which moves once a second, so the records
// seen are few and each is converted to Cedar once.
type trustKey struct {
	state                             string
	score, biometric, deviceAssurance float64
	passkeyAge                        int64
}

// trustKeyOf is m's key, if m is a trust record as trustKey knows it: any
// other shape (a field added, renamed or retyped) is converted per request.
func trustKeyOf(m map[string]any) (trustKey, bool) {
	var k trustKey
	var ok [5]bool
	k.state, ok[0] = m["state"].(string)
	k.score, ok[1] = m["score"].(float64)
	k.biometric, ok[2] = m["biometric"].(float64)
	k.deviceAssurance, ok[3] = m["device_assurance"].(float64)
	k.passkeyAge, ok[4] = m["passkey_age_s"].(int64)
	return k, len(m) == len(ok) && ok == [5]bool{true, true, true, true, true}
}

// maxTrustRecords bounds the cache; past it, it is emptied and refills
// with the records sessions carry now.
const maxTrustRecords = 4096

var trustRecords = newConverted[trustKey, policy.Value](maxTrustRecords)

// trustRecord is m converted to Cedar once (policy.Value) for each record
// seen, or m itself when its shape is not a known one.
func trustRecord(m map[string]any) any {
	k, ok := trustKeyOf(m)
	if !ok {
		return m
	}
	if v, hit := trustRecords.get(k); hit {
		return v
	}
	v, err := policy.NewValue(m)
	if err != nil {
		return m
	}
	trustRecords.put(k, v)
	return v
}

// authenticatorRecord is context.authenticator: what the realm knows of the
// passkey a session signed in with.
func authenticatorRecord(attested bool, format, aaguid string, synced bool) map[string]any {
	return map[string]any{
		scenes.AuthenticatorAttested: attested,
		scenes.AuthenticatorFormat:   format,
		scenes.AuthenticatorAAGUID:   aaguid,
		scenes.AuthenticatorSynced:   synced,
	}
}

// unattested is context.authenticator of a session whose passkey the
// avatar does not hold.
var unattested = convertOnce(authenticatorRecord(false, "", "", false))

// convertOnce is m converted to Cedar once (policy.Value), for a record
// that many requests carry unchanged; should the conversion fail, m
// itself, converted per request and refused there.
func convertOnce(m map[string]any) any {
	if v, err := policy.NewValue(m); err == nil {
		return v
	}
	return m
}

// authenticatorKey is what context.authenticator says of a passkey. The
// records of the few kinds of authenticator a realm sees are converted
// once: a session's passkey does not change, and converting its record for
// every decision was a tenth of a command's decision.
type authenticatorKey struct {
	attested, synced, hasAAGUID bool
	format                      string
	aaguid                      [16]byte
}

// maxAuthenticators bounds the cache: registrations name their
// authenticator's model, so past the bound it is emptied, and a flood of
// made-up models costs a refill, never unbounded memory.
const maxAuthenticators = 1024

var authenticators = newConverted[authenticatorKey, any](maxAuthenticators)

func authenticatorOf(attested bool, format string, aaguid []byte, synced bool) any {
	if len(aaguid) != 16 && len(aaguid) != 0 {
		// Not an AAGUID as WebAuthn defines it: said as it is, not cached.
		return authenticatorRecord(attested, format, hex.EncodeToString(aaguid), synced)
	}
	k := authenticatorKey{attested: attested, synced: synced, hasAAGUID: len(aaguid) > 0, format: format}
	copy(k.aaguid[:], aaguid)
	if v, ok := authenticators.get(k); ok {
		return v
	}
	v := convertOnce(authenticatorRecord(attested, format, hex.EncodeToString(aaguid), synced))
	authenticators.put(k, v)
	return v
}

// Decide asks the scene's policies and queues the answer for the audit log
// with the policies and signals that produced it, without waiting for it
// to be stored (see RecordQueued). An evaluation error is a deny.
func (s *Service) Decide(ctx context.Context, sc *scenes.Scene, p edge.Principal, a trust.Assessment, action string, resource policy.UID, extra map[string]any) policy.Decision {
	d, ev := evaluate(ctx, sc, p, a, action, resource, extra)
	s.RecordQueued(ctx, ev)
	return d
}

// DecideAndWait is Decide for a decision whose effect must not outrun its
// audit record: it returns only once the answer is stored, and a non-nil
// error (with the decision, which the caller must then not act on) when it
// could not be. entities are added to the scene's own, e.g. the asset a
// transfer moves.
func (s *Service) DecideAndWait(ctx context.Context, sc *scenes.Scene, p edge.Principal, a trust.Assessment, action string, resource policy.UID, extra map[string]any, entities ...policy.Entity) (policy.Decision, error) {
	d, ev := evaluate(ctx, sc, p, a, action, resource, extra, entities...)
	return d, s.RecordAndWait(ctx, ev)
}

// evaluate asks the scene's policies and returns the answer with the audit
// event that records it; the caller records the event.
func evaluate(ctx context.Context, sc *scenes.Scene, p edge.Principal, a trust.Assessment, action string, resource policy.UID, extra map[string]any, entities ...policy.Entity) (policy.Decision, audit.Event) {
	pctx := policyContext(p, a)
	for k, v := range extra {
		pctx[k] = v
	}
	req := policy.Request{
		Principal: policy.UID{Type: scenes.TypeAvatar, ID: p.Avatar.ID},
		Action:    scenes.ActionUID(action),
		Resource:  resource,
		Context:   pctx,
		Entities:  append(append(sc.Entities(), avatarEntity(p)), entities...),
	}
	d := decidePolicies(ctx, sc, req)
	ev := audit.Event{
		Actor: p.Avatar.ID, Action: action, Resource: resource.String(),
		Outcome: audit.Allow, Policies: d.Policies, Signals: pctx,
	}
	if !d.Allow {
		ev.Outcome, ev.Reasons = audit.Deny, []string{d.Reason}
	}
	return d, ev
}

// decidePolicies asks the scene's policies; an evaluation error is a deny
// that says why.
func decidePolicies(ctx context.Context, sc *scenes.Scene, req policy.Request) policy.Decision {
	d, err := sc.Policies.Decide(ctx, req)
	if err != nil {
		d.Allow = false
		if d.Reason == "" {
			d.Reason = "the request could not be evaluated: " + err.Error()
		}
	}
	return d
}

// converted keeps values converted to Cedar once, for the records many
// decisions carry unchanged. It holds at most max: past that it is
// emptied, so keys that requests make up cost a refill, never unbounded
// memory. Safe for concurrent use.
type converted[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]V
	max int
}

func newConverted[K comparable, V any](max int) *converted[K, V] {
	return &converted[K, V]{m: map[K]V{}, max: max}
}

func (c *converted[K, V]) get(k K) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *converted[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = v
}
