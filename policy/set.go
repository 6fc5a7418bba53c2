package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	scope "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// ErrDuplicateID is returned by Parse, Load and Merge when two policies
// share an id: decisions cite ids, so an ambiguous one would make an audit
// record point at the wrong policy.
var ErrDuplicateID = errors.New("policy: duplicate policy id")

// Set is an immutable, loaded set of Cedar policies, sliced for fast
// decisions. Safe for concurrent use. The zero Set holds no policies and
// denies everything.
type Set struct {
	policies []*entry
	byID     map[string]*entry

	// byAction holds policies whose action scope names actions or action
	// groups; anyAction those that may match any action.
	byAction  map[types.EntityUID][]*entry
	anyAction []*entry
	// resourceTypes are the types some policy's resource scope names; a
	// request for any other type can only match policies without one.
	resourceTypes map[types.EntityType]struct{}

	slices      sync.Map // sliceKey -> policySlice
	cachedCount atomic.Int64

	observer atomic.Pointer[Observer]
}

// Observer is told of each decision Decide makes: the request's action
// id, its effect and how long the evaluation took. It runs on the
// deciding goroutine, so it must be quick (a histogram's Observe).
type Observer func(action string, allow bool, took time.Duration)

// Observe makes o hear every later decision of the set (nil stops it).
// The set itself stays immutable: observing changes no answer.
func (s *Set) Observe(o Observer) {
	if o == nil {
		s.observer.Store(nil)
		return
	}
	s.observer.Store(&o)
}

// entry is one policy and what the Set knows about it.
type entry struct {
	id     string
	file   string
	line   int
	order  int    // position in the Set, so that decisions list policies in load order
	cite   string // how a decision's reason names it: "id" (file:line)
	forbid bool
	policy *cedar.Policy

	actions      []types.EntityUID // nil: any action
	resourceType types.EntityType  // "": any resource type
}

func (e *entry) where() string {
	return fmt.Sprintf("%s:%d", e.file, e.line)
}

// Parse parses one Cedar policy file. name is used in errors and policy ids.
// A malformed file yields a *SyntaxError.
func Parse(name string, src []byte) (set *Set, err error) {
	shape, err := scanShape(name, src)
	if err != nil {
		return nil, err
	}
	defer func() {
		// The parser is a dependency fed untrusted scene files; a panic in it
		// must reject the file, not end the realm.
		if r := recover(); r != nil {
			set, err = nil, &SyntaxError{File: name, Line: 1, Column: 1, Msg: fmt.Sprintf("parser failure: %v", r)}
		}
	}()

	var entries []*entry
	dec := cedar.NewDecoder(bytes.NewReader(src))
	for n := 0; ; n++ {
		var p cedar.Policy
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxError(name, shape, n, err)
		}
		p.SetFilename(name)
		pos := p.Position()
		id := fmt.Sprintf("%s#%d", name, n)
		if v, ok := p.Annotations()["id"]; ok {
			if v == "" {
				return nil, &SyntaxError{File: name, Line: pos.Line, Column: pos.Column, Msg: `empty @id("") annotation`}
			}
			id = string(v)
		}
		e := &entry{
			id:     id,
			file:   name,
			line:   pos.Line,
			forbid: p.Effect() == cedar.Forbid,
			policy: &p,
		}
		e.actions, e.resourceType = sliceScope(&p)
		entries = append(entries, e)
	}
	return newSet(entries)
}

// sliceScope reads which slices a policy belongs to from its scope.
func sliceScope(p *cedar.Policy) (actions []types.EntityUID, resourceType types.EntityType) {
	ast := p.AST()
	switch s := ast.Action.(type) {
	case scope.ScopeTypeEq:
		actions = []types.EntityUID{s.Entity}
	case scope.ScopeTypeIn:
		actions = []types.EntityUID{s.Entity}
	case scope.ScopeTypeInSet:
		// An empty list matches no action; a non-nil empty slice indexes
		// the policy nowhere, which is exactly that.
		actions = append(make([]types.EntityUID, 0, len(s.Entities)), s.Entities...)
	}
	switch s := ast.Resource.(type) {
	case scope.ScopeTypeEq:
		resourceType = s.Entity.Type
	case scope.ScopeTypeIs:
		resourceType = s.Type
	case scope.ScopeTypeIsIn:
		resourceType = s.Type
	}
	// Anything else (unconstrained, `resource in`, a scope kind added by a
	// later cedar-go) stays unindexed and so is evaluated for every request.
	return actions, resourceType
}

// Load reads and parses the named .cedar files from fsys and merges them
// into one Set. File names become part of the default policy ids.
func Load(fsys fs.FS, paths ...string) (*Set, error) {
	sets := make([]*Set, 0, len(paths))
	for _, path := range paths {
		src, err := fs.ReadFile(fsys, path)
		if err != nil {
			return nil, fmt.Errorf("policy: load %s: %w", path, err)
		}
		s, err := Parse(path, src)
		if err != nil {
			return nil, err
		}
		sets = append(sets, s)
	}
	return Merge(sets...)
}

// Merge combines sets (e.g. realm-wide + scene policies) into a new Set;
// the inputs are left as they were. Duplicate policy ids are an error
// wrapping ErrDuplicateID. Nil sets are skipped.
func Merge(sets ...*Set) (*Set, error) {
	var entries []*entry
	for _, s := range sets {
		if s == nil {
			continue
		}
		for _, e := range s.policies {
			c := *e
			entries = append(entries, &c)
		}
	}
	return newSet(entries)
}

func newSet(entries []*entry) (*Set, error) {
	s := &Set{
		policies:      entries,
		byID:          make(map[string]*entry, len(entries)),
		byAction:      make(map[types.EntityUID][]*entry),
		resourceTypes: make(map[types.EntityType]struct{}),
	}
	for i, e := range entries {
		if prev, ok := s.byID[e.id]; ok {
			return nil, fmt.Errorf("%w %q: %s and %s", ErrDuplicateID, e.id, prev.where(), e.where())
		}
		s.byID[e.id] = e
		e.order = i
		e.cite = strconv.Quote(e.id) + " (" + e.where() + ")"
		if e.actions == nil {
			s.anyAction = append(s.anyAction, e)
		}
		for _, a := range e.actions {
			if l := s.byAction[a]; len(l) == 0 || l[len(l)-1] != e { // `action in [A, A]`
				s.byAction[a] = append(l, e)
			}
		}
		if e.resourceType != "" {
			s.resourceTypes[e.resourceType] = struct{}{}
		}
	}
	return s, nil
}

// Len reports the number of policies in the Set.
func (s *Set) Len() int { return len(s.policies) }

// IDs returns the policy ids in load order.
func (s *Set) IDs() []string {
	ids := make([]string, len(s.policies))
	for i, e := range s.policies {
		ids[i] = e.id
	}
	return ids
}
