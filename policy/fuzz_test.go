package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.cedar"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed policies in testdata: %v", err)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, src := range []string{
		"permit (principal, action, resource)",
		"permit (principal, action, resource) when { context.x == \"a };",
		"permit (principal, action, resource) when { 99999999999999999999 };",
		"permit (principal, action, resource) when { context.x like \"\\u{zz}\" };",
		"@id(\"a\") permit (principal, action, resource); @id(\"a\") forbid (principal, action, resource);",
		"forbid (principal, action in [Action::\"a\", Action::\"b\"], resource is T in G::\"g\") unless { ((((true)))) };",
		"permit (principal, action, resource); /* open",
	} {
		f.Add([]byte(src))
	}
	req := Request{Principal: UID{"Avatar", "a"}, Action: UID{"Action", "enter"}, Resource: UID{"Scene", "s"},
		Context: map[string]any{"x": "a", "n": 1}}
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := Parse("f.cedar", src)
		if err != nil {
			var se *SyntaxError
			switch {
			case errors.As(err, &se):
				if se.File != "f.cedar" || se.Line < 1 || se.Column < 1 || se.Msg == "" {
					t.Fatalf("Parse(%q) error = %+v, want file, 1-based position and message", src, *se)
				}
			case errors.Is(err, ErrDuplicateID):
			default:
				t.Fatalf("Parse(%q) error %T %v, want *SyntaxError or ErrDuplicateID", src, err, err)
			}
			if s != nil {
				t.Fatalf("Parse(%q) returned a Set with error %v", src, err)
			}
			return
		}
		ids := s.IDs()
		if len(ids) != s.Len() || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
			t.Fatalf("Parse(%q).IDs() = %q, want %d unique ids", src, ids, s.Len())
		}
		got, err := s.Decide(context.Background(), req)
		if err != nil {
			t.Fatalf("Decide() error: %v", err)
		}
		want, _, _ := decideUnsliced(s, req)
		if got.Allow != (want == cedar.Allow) {
			t.Fatalf("Decide() = %+v, unsliced allow = %v", got, want == cedar.Allow)
		}
	})
}

func FuzzDecide(f *testing.F) {
	s := loadTestdata(f)
	f.Add(0.9, "trusted", int64(80), "day-1", "press-line", true)
	f.Add(0.3, "suspended", int64(200), "night", "", false)
	f.Add(-1e300, "", int64(-1), "day*", "press-line\x00", true)
	f.Fuzz(func(t *testing.T, score float64, state string, value int64, shift, zone string, inGroup bool) {
		req := Request{
			Principal: UID{"Avatar", "op"}, Action: UID{"Action", "set-speed"}, Resource: UID{"Actuator", "press-1"},
			Context: map[string]any{"zone": zone, "value": value, "shift": shift},
			Entities: []Entity{
				{UID: UID{"Avatar", "op"}, Parents: []UID{{"Role", "operator"}}, Attrs: map[string]any{"trust_state": state, "trust_score": score}},
				{UID: UID{"Actuator", "press-1"}, Parents: []UID{{"Zone", "press-line"}}, Attrs: map[string]any{"max_value": 100}},
			},
		}
		if inGroup {
			req.Entities = append(req.Entities, Entity{UID: UID{"Action", "set-speed"}, Parents: []UID{{"Action", "actuate"}}})
		}
		before := s.IDs()
		got, err := s.Decide(context.Background(), req)
		want, _, convErr := decideUnsliced(s, req)
		if convErr != nil {
			if !errors.Is(err, ErrInvalidRequest) || got.Allow || got.Reason == "" {
				t.Fatalf("Decide() = %+v, %v; want a deny wrapping ErrInvalidRequest for %v", got, err, convErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("Decide() error: %v", err)
		}
		if got.Allow != (want == cedar.Allow) || (!got.Allow && got.Reason == "") {
			t.Fatalf("Decide() = %+v, unsliced allow = %v", got, want == cedar.Allow)
		}
		if after := s.IDs(); !slices.Equal(before, after) {
			t.Fatalf("Decide() changed the Set: %q -> %q", before, after)
		}
	})
}
