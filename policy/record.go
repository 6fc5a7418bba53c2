package policy

import (
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	"github.com/cedar-policy/cedar-go/types"
)

// RecordBase is the members of a record that many requests share (an
// agent's chain, its delegation's limits), converted to Cedar once; With
// adds a request's own members (the day's use) and makes the record. A
// Cedar record must be built whole (cedar-go sorts and hashes its members
// when it is made), but the shared members are not converted again, and
// no Go map is built for them per request.
type RecordBase struct {
	m   types.RecordMap
	src map[string]any
}

// Member is one member a request adds to a RecordBase.
type Member struct {
	Name  string
	Value any // as in a request's context (see cedarValue)
}

// NewRecordBase converts m as a request's context would.
func NewRecordBase(m map[string]any) (RecordBase, error) {
	rec, err := cedarRecord(m, 1)
	if err != nil {
		return RecordBase{}, err
	}
	return RecordBase{m: rec.Map(), src: maps.Clone(m)}, nil
}

// recordMaps are the scratch maps With builds records from: cedar-go
// clones the map it is given, so one can serve again.
var recordMaps = sync.Pool{New: func() any { m := make(types.RecordMap, 16); return &m }}

// With returns the record of the base's members and members, as a Value.
// A member that the base holds too, or that cannot be converted, is an
// error: a request's member never silently replaces a shared one.
func (r RecordBase) With(members ...Member) (Value, error) {
	mp := recordMaps.Get().(*types.RecordMap)
	m := *mp
	defer func() { clear(m); recordMaps.Put(mp) }()
	maps.Copy(m, r.m)
	for _, mb := range members {
		k := types.String(mb.Name)
		if _, dup := m[k]; dup {
			return Value{}, &valueError{path: []string{mb.Name}, msg: "member given twice"}
		}
		cv, err := cedarValue(mb.Value, 1)
		if err != nil {
			return Value{}, within(mb.Name, err)
		}
		m[k] = cv
	}
	var rec types.Record
	if len(m) > 0 { // as cedarRecord: an empty record is the zero Record
		rec = types.NewRecord(m)
	}
	return Value{src: recordSource{base: r.src, members: append([]Member(nil), members...)}, v: rec}, nil
}

// recordSource is the Go value of a record made by With: it encodes to
// JSON as the map of all its members.
type recordSource struct {
	base    map[string]any
	members []Member
}

func (s recordSource) asMap() map[string]any {
	m := make(map[string]any, len(s.base)+len(s.members))
	maps.Copy(m, s.base)
	for _, mb := range s.members {
		m[mb.Name] = mb.Value
	}
	return m
}

func (s recordSource) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(s.asMap())
	if err != nil {
		return nil, fmt.Errorf("policy: encode a record: %w", err)
	}
	return b, nil
}

// Equal reports whether v and o are the same Cedar value (as a policy
// would compare them).
func (v Value) Equal(o Value) bool {
	if v.v == nil || o.v == nil {
		return v.v == nil && o.v == nil
	}
	return v.v.Equal(o.v)
}
