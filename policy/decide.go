package policy

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/zerorealm/zerorealm/internal/tracing"
	"go.opentelemetry.io/otel/attribute"
)

// ErrInvalidRequest is returned by Decide for a request it cannot evaluate:
// an empty principal, action or resource, an entity type that is not a Cedar
// name, an attribute value with no Cedar equivalent. Callers treat it as
// deny; the returned Decision already says deny.
var ErrInvalidRequest = errors.New("policy: invalid request")

// maxCachedSlices bounds the slice cache. Keys are normalised to the actions
// and types policies name, so only unusual action hierarchies in requests
// can approach it; past it slices are computed per request.
const maxCachedSlices = 4096

// UID names an entity, e.g. {Type: "Avatar", ID: "av_123"}.
type UID struct {
	Type, ID string
}

// String renders u in Cedar syntax: Avatar::"av_123".
func (u UID) String() string {
	return types.EntityUID{Type: types.EntityType(u.Type), ID: types.String(u.ID)}.String()
}

// Entity is what policies may read about an entity: its attributes and the
// groups it is in. Attrs values may be:
// string, bool, int/int32/int64, float64 (decimal, 4 fractional digits),
// time.Time, time.Duration, UID, []any, []string, map[string]any.
type Entity struct {
	UID     UID
	Parents []UID
	Attrs   map[string]any

	// prepared is the entity converted by Prepare: a request uses it and
	// does not convert UID, Parents and Attrs again.
	prepared *types.Entity
}

// Prepare converts e to Cedar once, for an entity that many requests carry
// unchanged (an agent principal whose trust has not moved): a request
// holding the returned Entity uses that conversion. The returned Entity's
// UID, Parents and Attrs must not be changed afterwards, since the
// conversion would no longer say what they say. Errors are a request's
// (wrapping ErrInvalidRequest).
func (e Entity) Prepare() (Entity, error) {
	e.prepared = nil
	ce, err := e.cedar()
	if err != nil {
		return Entity{}, fmt.Errorf("%w: %w", ErrInvalidRequest, within("entity "+e.UID.String(), err))
	}
	e.prepared = &ce
	return e, nil
}

// Request is one authorization question. Entities and Shared together
// carry every entity a policy may dereference or test membership of,
// including action groups.
type Request struct {
	Principal UID
	Action    UID // Type "Action" or "<Namespace>::Action"
	Resource  UID
	Context   map[string]any
	Entities  []Entity
	// Shared are entities converted in advance by NewEntities, used as
	// they are; nil is none. An entity may not be in both.
	Shared *Entities
}

// Decision is the outcome of a request and what decided it.
type Decision struct {
	Allow bool
	// Policies are the ids of the policies that decided: the permits that
	// allowed, or the forbids that denied. Empty on a default deny.
	Policies []string
	// Reason is always set on deny: the matching forbid(s), or "no policy
	// permits <action> on <resource type>", with evaluation errors appended.
	// On allow it names the permits.
	Reason string
	// Errors are policy evaluation errors as "<policy id>: <message>". A
	// policy that fails to evaluate neither permits nor forbids.
	Errors []string
}

// Decide evaluates only the policies that can apply to the request's action
// and resource type. Default deny. A malformed request returns an error
// wrapping ErrInvalidRequest; a cancelled ctx returns its error. In both
// cases the Decision denies.
func (s *Set) Decide(ctx context.Context, req Request) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{Reason: "not evaluated: " + err.Error()}, fmt.Errorf("policy: decide: %w", err)
	}
	creq, entities, err := req.cedar()
	if err != nil {
		return Decision{Reason: "invalid request: " + err.Error()}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	// A child of the caller's span when it records one: the decision is a
	// step of the request's trace.
	_, span := tracing.Child(ctx, "policy.decide")
	observe := s.observer.Load()
	var start time.Time
	if observe != nil {
		start = time.Now()
	}
	policies := s.sliceFor(creq.Action, creq.Resource.Type, entities)
	decision, diag := cedar.Authorize(policies, entities, creq)
	d := s.explain(creq, decision, diag)
	if observe != nil {
		(*observe)(req.Action.ID, d.Allow, time.Since(start))
	}
	if span != nil {
		span.SetAttributes(attribute.String("zerorealm.action", req.Action.ID), attribute.String("zerorealm.resource", req.Resource.String()),
			attribute.Bool("zerorealm.allow", d.Allow), attribute.StringSlice("zerorealm.policies", d.Policies))
		span.End()
	}
	return d, nil
}

func (r Request) cedar() (cedar.Request, *requestEntities, error) {
	var creq cedar.Request
	var err error
	for _, p := range []struct {
		role string
		uid  UID
		dst  *types.EntityUID
	}{
		{"principal", r.Principal, &creq.Principal},
		{"action", r.Action, &creq.Action},
		{"resource", r.Resource, &creq.Resource},
	} {
		if p.uid.Type == "" || p.uid.ID == "" {
			return creq, nil, fmt.Errorf("empty %s %s", p.role, p.uid)
		}
		if *p.dst, err = cedarUID(p.uid); err != nil {
			return creq, nil, within(p.role, err)
		}
	}
	if t := r.Action.Type; t != "Action" && !strings.HasSuffix(t, "::Action") {
		return creq, nil, fmt.Errorf("action %s: type must be Action or <Namespace>::Action", r.Action)
	}
	if creq.Context, err = cedarRecord(r.Context, 1); err != nil {
		return creq, nil, within("context", err)
	}
	entities, err := newRequestEntities(r.Entities, r.Shared)
	if err != nil {
		return creq, nil, err
	}
	return creq, entities, nil
}

func (e Entity) cedar() (types.Entity, error) {
	if e.prepared != nil {
		return *e.prepared, nil
	}
	uid, err := cedarUID(e.UID)
	if err != nil {
		return types.Entity{}, err
	}
	parents := make([]types.EntityUID, len(e.Parents))
	for i, p := range e.Parents {
		if parents[i], err = cedarUID(p); err != nil {
			return types.Entity{}, within("parents", err)
		}
	}
	attrs, err := cedarRecord(e.Attrs, 1)
	if err != nil {
		return types.Entity{}, within("attrs", err)
	}
	ce := types.Entity{UID: uid, Attributes: attrs}
	if len(parents) > 0 { // the zero set is empty, and costs no allocation
		ce.Parents = types.NewEntityUIDSet(parents...)
	}
	return ce, nil
}

// policySlice is the part of a Set one kind of request evaluates, in load
// order. It satisfies cedar.PolicyIterator.
type policySlice []*entry

func (ps policySlice) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, e := range ps {
			if !yield(cedar.PolicyID(e.id), e.policy) {
				return
			}
		}
	}
}

// sliceKey identifies a slice. Action and type are zeroed when no policy
// names them, so requests for unknown actions share one entry and cannot
// grow the cache; groups lists the action's indexed ancestors.
type sliceKey struct {
	action       types.EntityUID
	groups       string
	resourceType types.EntityType
}

func (s *Set) sliceFor(action types.EntityUID, resourceType types.EntityType, entities types.EntityGetter) policySlice {
	var key sliceKey
	if _, ok := s.byAction[action]; ok {
		key.action = action
	}
	groups := s.indexedAncestors(action, entities)
	if len(groups) > 0 {
		key.groups = groupsKey(groups)
	}
	if _, ok := s.resourceTypes[resourceType]; ok {
		key.resourceType = resourceType
	}
	if cached, ok := s.slices.Load(key); ok {
		return cached.(policySlice)
	}

	candidates := slices.Clone(s.anyAction)
	candidates = append(candidates, s.byAction[key.action]...)
	for _, g := range groups {
		candidates = append(candidates, s.byAction[g]...)
	}
	ps := policySlice(slices.DeleteFunc(candidates, func(e *entry) bool {
		return e.resourceType != "" && e.resourceType != key.resourceType
	}))
	slices.SortFunc(ps, func(a, b *entry) int { return a.order - b.order })
	ps = slices.Compact(ps)

	if s.cachedCount.Load() < maxCachedSlices {
		if _, loaded := s.slices.LoadOrStore(key, ps); !loaded {
			s.cachedCount.Add(1)
		}
	}
	return ps
}

// groupsKey names a set of action groups for the slice cache, whatever
// their order. Each type and id is length-prefixed, so no two sets share a
// key; Cedar's quoted form would do too, at several times the cost.
func groupsKey(groups []types.EntityUID) string {
	slices.SortFunc(groups, func(a, b types.EntityUID) int {
		if c := strings.Compare(string(a.Type), string(b.Type)); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
	var b []byte
	for _, g := range groups {
		b = strconv.AppendInt(b, int64(len(g.Type)), 10)
		b = append(b, ':')
		b = append(b, g.Type...)
		b = strconv.AppendInt(b, int64(len(g.ID)), 10)
		b = append(b, ':')
		b = append(b, g.ID...)
	}
	return string(b)
}

// indexedAncestors returns the groups the action is in, transitively, that
// some policy's action scope names. Cedar's `action in Action::"g"` holds
// for members of g, so their policies belong to the slice too.
func (s *Set) indexedAncestors(action types.EntityUID, entities types.EntityGetter) []types.EntityUID {
	start, ok := entities.Get(action)
	if !ok || start.Parents.Len() == 0 {
		return nil
	}
	var found []types.EntityUID
	seen := map[types.EntityUID]struct{}{action: {}}
	queue := start.Parents.Slice()
	for len(queue) > 0 {
		uid := queue[0]
		queue = queue[1:]
		if _, dup := seen[uid]; dup {
			continue
		}
		seen[uid] = struct{}{}
		if _, ok := s.byAction[uid]; ok {
			found = append(found, uid)
		}
		if e, ok := entities.Get(uid); ok {
			queue = append(queue, e.Parents.Slice()...)
		}
	}
	return found
}

func (s *Set) explain(req cedar.Request, decision cedar.Decision, diag cedar.Diagnostic) Decision {
	d := Decision{Allow: decision == cedar.Allow}
	// Each policy is named as its entry's cite says, made once when the
	// set was built: a decision costs one string for its reason.
	cites := make([]string, len(diag.Reasons))
	size := 0
	for i, r := range diag.Reasons {
		d.Policies = append(d.Policies, string(r.PolicyID))
		if e, ok := s.byID[string(r.PolicyID)]; ok {
			cites[i] = e.cite
		} else {
			cites[i] = strconv.Quote(string(r.PolicyID))
		}
		size += len(cites[i]) + len(", ")
	}
	for _, e := range diag.Errors {
		d.Errors = append(d.Errors, fmt.Sprintf("%s: %s", e.PolicyID, e.Message))
	}

	if d.Allow || len(cites) > 0 {
		verb, noun := "forbidden by ", "policy "
		if d.Allow {
			verb = "permitted by "
		}
		if len(cites) > 1 {
			noun = "policies "
		}
		var b strings.Builder
		b.Grow(len(verb) + len(noun) + size)
		b.WriteString(verb)
		b.WriteString(noun)
		for i, c := range cites {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(c)
		}
		d.Reason = b.String()
	} else {
		d.Reason = fmt.Sprintf("no policy permits %s on %s", req.Action, req.Resource.Type)
	}
	if len(d.Errors) > 0 {
		d.Reason += "; evaluation errors: " + strings.Join(d.Errors, "; ")
	}
	return d
}
