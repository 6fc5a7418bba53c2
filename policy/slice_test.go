package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"
)

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// randomPolicies writes n policies whose scopes cover every shape the index
// distinguishes, with conditions that match, fail to match, or error.
func randomPolicies(r *rand.Rand, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if r.IntN(4) == 0 {
			fmt.Fprintf(&b, "@id(\"p%d\")\n", i)
		}
		b.WriteString(pick(r, "permit", "permit", "forbid"))
		b.WriteString(" (")
		b.WriteString(pick(r, `principal`, `principal == User::"u0"`, `principal in Team::"t0"`, `principal is User`, `principal is User in Team::"t1"`))
		b.WriteString(", ")
		b.WriteString(pick(r, `action`, `action == Action::"a0"`, `action == Action::"a1"`, `action == Action::"g0"`,
			`action in Action::"g0"`, `action in Action::"g1"`, `action in Action::"a2"`,
			`action in [Action::"a0", Action::"g1"]`, `action in [Action::"a3", Action::"a4"]`, `action in []`))
		b.WriteString(", ")
		b.WriteString(pick(r, `resource`, `resource == Doc::"d0"`, `resource == Folder::"f1"`, `resource is Img`,
			`resource is Doc`, `resource in Folder::"f0"`, `resource is Doc in Folder::"f1"`))
		b.WriteString(")")
		b.WriteString(pick(r, "", " when { context.level > 2 }", " when { resource.public }",
			" unless { principal.banned }", " when { resource has owner && resource.owner == principal }",
			` when { action in Action::"g1" }`))
		b.WriteString(";\n")
	}
	return b.String()
}

func randomRequest(r *rand.Rand) Request {
	req := Request{
		Principal: pick(r, UID{"User", "u0"}, UID{"User", "u1"}, UID{"Team", "t0"}),
		Action:    pick(r, UID{"Action", "a0"}, UID{"Action", "a1"}, UID{"Action", "a2"}, UID{"Action", "a3"}, UID{"Action", "g0"}, UID{"Action", "g1"}, UID{"Action", "zz"}),
		Resource:  pick(r, UID{"Doc", "d0"}, UID{"Doc", "d1"}, UID{"Img", "i0"}, UID{"Folder", "f0"}, UID{"Folder", "f1"}, UID{"Other", "o0"}),
		Context:   map[string]any{},
	}
	if r.IntN(2) == 0 {
		req.Context["level"] = r.IntN(5)
	}
	// Action hierarchy, sometimes deep, sometimes cyclic.
	for _, a := range []string{"a0", "a1", "a2", "a3", "g0", "g1", "zz"} {
		if r.IntN(3) == 0 {
			continue
		}
		var parents []UID
		for _, g := range []string{"g0", "g1", "a2"} {
			if g != a && r.IntN(3) == 0 {
				parents = append(parents, UID{"Action", g})
			}
		}
		req.Entities = append(req.Entities, Entity{UID: UID{"Action", a}, Parents: parents})
	}
	for _, res := range []UID{{"Doc", "d0"}, {"Doc", "d1"}, {"Img", "i0"}, {"Folder", "f0"}, {"Other", "o0"}} {
		e := Entity{UID: res, Attrs: map[string]any{}}
		if r.IntN(2) == 0 {
			e.Parents = []UID{pick(r, UID{"Folder", "f0"}, UID{"Folder", "f1"})}
		}
		if r.IntN(3) > 0 {
			e.Attrs["public"] = r.IntN(2) == 0
		}
		if r.IntN(2) == 0 {
			e.Attrs["owner"] = pick(r, UID{"User", "u0"}, UID{"User", "u1"})
		}
		req.Entities = append(req.Entities, e)
	}
	for _, p := range []UID{{"User", "u0"}, {"User", "u1"}} {
		e := Entity{UID: p, Attrs: map[string]any{}}
		if r.IntN(2) == 0 {
			e.Parents = []UID{pick(r, UID{"Team", "t0"}, UID{"Team", "t1"})}
		}
		if r.IntN(2) == 0 {
			e.Attrs["banned"] = r.IntN(2) == 0
		}
		req.Entities = append(req.Entities, e)
	}
	return req
}

// decideUnsliced is the reference: cedar-go over every policy in the Set.
func decideUnsliced(s *Set, req Request) (cedar.Decision, cedar.Diagnostic, error) {
	full := cedar.NewPolicySet()
	for _, e := range s.policies {
		full.Add(cedar.PolicyID(e.id), e.policy)
	}
	creq, entities, err := req.cedar()
	if err != nil {
		return cedar.Deny, cedar.Diagnostic{}, err
	}
	d, diag := cedar.Authorize(full, entities, creq)
	return d, diag, nil
}

func sortedReasons(diag cedar.Diagnostic) (ids, errs []string) {
	for _, r := range diag.Reasons {
		ids = append(ids, string(r.PolicyID))
	}
	for _, e := range diag.Errors {
		errs = append(errs, fmt.Sprintf("%s: %s", e.PolicyID, e.Message))
	}
	slices.Sort(ids)
	slices.Sort(errs)
	return ids, errs
}

func TestSlicingNeverChangesADecision(t *testing.T) {
	ctx := context.Background()
	var decisions, allows, forbids, errored, sliced int
	for seed := uint64(0); seed < 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		src := randomPolicies(r, 1+r.IntN(40))
		s, err := Parse("rand.cedar", []byte(src))
		if err != nil {
			t.Fatalf("seed %d: Parse() error: %v\n%s", seed, err, src)
		}
		for i := 0; i < 200; i++ {
			req := randomRequest(r)
			got, err := s.Decide(ctx, req)
			if err != nil {
				t.Fatalf("seed %d: Decide() error: %v", seed, err)
			}
			want, diag, _ := decideUnsliced(s, req)
			wantIDs, wantErrs := sortedReasons(diag)
			gotIDs, gotErrs := slices.Sorted(slices.Values(got.Policies)), slices.Sorted(slices.Values(got.Errors))
			if got.Allow != (want == cedar.Allow) || !slices.Equal(gotIDs, wantIDs) || !slices.Equal(gotErrs, wantErrs) {
				t.Fatalf("seed %d request %d: Decide() = allow %v by %q errors %q, want allow %v by %q errors %q\nrequest: %+v\npolicies:\n%s",
					seed, i, got.Allow, gotIDs, gotErrs, want == cedar.Allow, wantIDs, wantErrs, req, src)
			}
			decisions++
			switch {
			case got.Allow:
				allows++
			case len(got.Policies) > 0:
				forbids++
			}
			if len(got.Errors) > 0 {
				errored++
			}
			creq, entities, _ := req.cedar()
			if len(s.sliceFor(creq.Action, creq.Resource.Type, entities)) < s.Len() {
				sliced++
			}
		}
	}
	// The comparison means something only if every outcome occurred and
	// slicing actually left policies out.
	t.Logf("%d decisions: %d allow, %d forbid, %d with errors, %d evaluated a strict subset", decisions, allows, forbids, errored, sliced)
	for name, n := range map[string]int{"allows": allows, "forbids": forbids, "default denies": decisions - allows - forbids, "errors": errored, "sliced": sliced} {
		if n < decisions/50 {
			t.Errorf("only %d of %d decisions were %s; the random policies no longer exercise it", n, decisions, name)
		}
	}
}

func TestSliceContents(t *testing.T) {
	s := mustParse(t, "s.cedar", `
@id("any") permit (principal, action, resource);
@id("read-doc") permit (principal, action == Action::"read", resource is Doc);
@id("read-any") permit (principal, action == Action::"read", resource);
@id("write-doc") permit (principal, action == Action::"write", resource == Doc::"d");
@id("in-folder") permit (principal, action == Action::"write", resource in Folder::"f");
@id("group") forbid (principal, action in Action::"edit", resource is Doc in Folder::"f");
@id("set") permit (principal, action in [Action::"read", Action::"edit"], resource is Img);
@id("nothing") permit (principal, action in [], resource);
`)
	tests := []struct {
		name     string
		action   UID
		parents  []UID
		resource string
		want     []string
	}{
		{"read doc", UID{"Action", "read"}, nil, "Doc", []string{"any", "read-doc", "read-any"}},
		{"read img", UID{"Action", "read"}, nil, "Img", []string{"any", "read-any", "set"}},
		{"write doc", UID{"Action", "write"}, nil, "Doc", []string{"any", "write-doc", "in-folder"}},
		{"write in edit group", UID{"Action", "write"}, []UID{{"Action", "edit"}}, "Doc", []string{"any", "write-doc", "in-folder", "group"}},
		{"write in edit group on img", UID{"Action", "write"}, []UID{{"Action", "edit"}}, "Img", []string{"any", "in-folder", "set"}},
		{"unknown action", UID{"Action", "fly"}, nil, "Doc", []string{"any"}},
		{"unknown type", UID{"Action", "read"}, nil, "Cloud", []string{"any", "read-any"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{Principal: UID{"User", "u"}, Action: tt.action, Resource: UID{tt.resource, "x"},
				Entities: []Entity{{UID: tt.action, Parents: tt.parents}}}
			creq, entities, err := req.cedar()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for id := range s.sliceFor(creq.Action, creq.Resource.Type, entities).All() {
				got = append(got, string(id))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("sliceFor(%s, %s) = %q, want %q", tt.action, tt.resource, got, tt.want)
			}
		})
	}
}

func TestDecideConcurrently(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := mustParse(t, "rand.cedar", randomPolicies(r, 60))
	reqs := make([]Request, 64)
	want := make([]bool, len(reqs))
	for i := range reqs {
		reqs[i] = randomRequest(r)
		d, _, err := decideUnsliced(s, reqs[i])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = d == cedar.Allow
	}
	t.Run("group", func(t *testing.T) {
		for w := 0; w < 4; w++ {
			t.Run(fmt.Sprint(w), func(t *testing.T) {
				t.Parallel()
				for i := range 500 {
					k := (i*31 + w) % len(reqs)
					d, err := s.Decide(context.Background(), reqs[k])
					if err != nil || d.Allow != want[k] {
						t.Errorf("Decide(request %d) = %v, %v; want allow %v", k, d.Allow, err, want[k])
						return
					}
				}
			})
		}
	})
}
