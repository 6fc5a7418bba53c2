package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"
)

// benchSet spreads n scene policies over up to 100 actions and 10 resource
// types, as a realm's do, next to two realm-wide policies every request
// evaluates.
func benchSet(b *testing.B, n int) (*Set, []Request) {
	var src strings.Builder
	src.WriteString(`@id("suspended") forbid (principal, action, resource) when { principal.trust_state == "suspended" };` + "\n")
	src.WriteString(`@id("owners") permit (principal, action, resource) when { resource has owner && resource.owner == principal };` + "\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&src, "permit (principal is Avatar, action == Action::\"a%d\", resource is T%d)\n"+
			"when { principal.trust_score.greaterThanOrEqual(decimal(\"0.5\")) && context.zone == \"z%d\" };\n", i%100, i/100%10, i)
	}
	s, err := Parse("bench.cedar", []byte(src.String()))
	if err != nil {
		b.Fatal(err)
	}
	var reqs []Request
	for i := 0; i < 16; i++ {
		p := i * 7919 % n // spread over the policies
		reqs = append(reqs, Request{
			Principal: UID{"Avatar", "av"},
			Action:    UID{"Action", fmt.Sprintf("a%d", p%100)},
			Resource:  UID{fmt.Sprintf("T%d", p/100%10), "r"},
			Context:   map[string]any{"zone": fmt.Sprintf("z%d", p)},
			Entities: []Entity{
				{UID: UID{"Avatar", "av"}, Attrs: map[string]any{"trust_state": "trusted", "trust_score": 0.8}},
			},
		})
	}
	return s, reqs
}

var sizes = []int{10, 100, 1000}

func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	for _, n := range sizes {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			s, reqs := benchSet(b, n)
			for _, r := range reqs { // warm the slice cache, check the workload allows
				if d, err := s.Decide(ctx, r); err != nil || !d.Allow {
					b.Fatalf("Decide() = %+v, %v; want allow", d, err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Decide(ctx, reqs[i%len(reqs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecideUnsliced is the baseline slicing is measured against:
// the same conversion, then cedar-go over every policy.
func BenchmarkDecideUnsliced(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			s, reqs := benchSet(b, n)
			full := cedar.NewPolicySet()
			for _, e := range s.policies {
				full.Add(cedar.PolicyID(e.id), e.policy)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				creq, entities, err := reqs[i%len(reqs)].cedar()
				if err != nil {
					b.Fatal(err)
				}
				if d, _ := cedar.Authorize(full, entities, creq); d != cedar.Allow {
					b.Fatal("want allow")
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			var src strings.Builder
			for i := 0; i < n; i++ {
				fmt.Fprintf(&src, "permit (principal is Avatar, action == Action::\"a%d\", resource is T%d)\n"+
					"when { principal.trust_score.greaterThanOrEqual(decimal(\"0.5\")) && context.zone == \"z%d\" };\n", i%100, i/100%10, i)
			}
			data := []byte(src.String())
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := Parse("bench.cedar", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
