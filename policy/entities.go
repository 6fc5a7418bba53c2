package policy

import (
	"fmt"

	"github.com/cedar-policy/cedar-go/types"
)

// Entities are entities converted to Cedar once, for the many requests that
// share them: a scene's zones, twins and actuators do not change between
// requests, and converting them again for each one was most of a
// decision's cost. Immutable and safe for concurrent use.
type Entities struct {
	m types.EntityMap
}

// NewEntities converts list, with the same rules and errors (wrapping
// ErrInvalidRequest) as a request's Entities.
func NewEntities(list []Entity) (*Entities, error) {
	m, err := cedarEntities(list, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return &Entities{m: m}, nil
}

// Len is how many entities there are.
func (e *Entities) Len() int {
	if e == nil {
		return 0
	}
	return len(e.m)
}

// cedarEntities converts list; an entity already in shared, or twice in
// list, is an error: which of two versions a policy would see is undefined.
func cedarEntities(list []Entity, shared *Entities) (types.EntityMap, error) {
	m := make(types.EntityMap, len(list))
	for _, e := range list {
		ce, err := e.cedar()
		if err != nil {
			return nil, within("entity "+e.UID.String(), err)
		}
		if _, dup := m[ce.UID]; dup {
			return nil, fmt.Errorf("entity %s given twice", e.UID)
		}
		if shared != nil {
			if _, dup := shared.m[ce.UID]; dup {
				return nil, fmt.Errorf("entity %s given twice (also in the shared entities)", e.UID)
			}
		}
		m[ce.UID] = ce
	}
	return m, nil
}

// fewEntities is how many of a request's own entities are kept in a
// slice rather than a map: with the scene's entities shared, a request
// usually brings one or two, and a linear search of those is cheaper than
// building a map for them.
const fewEntities = 8

// requestEntities is what a decision sees: the request's own entities
// (few, or own when there are many) over the shared ones, which never
// overlap.
type requestEntities struct {
	few    []types.Entity
	own    types.EntityMap
	shared types.EntityMap
}

func newRequestEntities(list []Entity, shared *Entities) (*requestEntities, error) {
	r := &requestEntities{}
	if shared != nil {
		r.shared = shared.m
	}
	if len(list) > fewEntities {
		own, err := cedarEntities(list, shared)
		r.own = own
		return r, err
	}
	r.few = make([]types.Entity, 0, len(list))
	for _, e := range list {
		ce, err := e.cedar()
		if err != nil {
			return nil, within("entity "+e.UID.String(), err)
		}
		if _, dup := r.Get(ce.UID); dup {
			if _, inShared := r.shared[ce.UID]; inShared {
				return nil, fmt.Errorf("entity %s given twice (also in the shared entities)", e.UID)
			}
			return nil, fmt.Errorf("entity %s given twice", e.UID)
		}
		r.few = append(r.few, ce)
	}
	return r, nil
}

func (r *requestEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	for i := range r.few {
		if r.few[i].UID == uid {
			return r.few[i], true
		}
	}
	if e, ok := r.own[uid]; ok {
		return e, true
	}
	e, ok := r.shared[uid]
	return e, ok
}
