package scenes

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/zerorealm/zerorealm/internal/ident"
)

// FuzzParse feeds the parser arbitrary scene files: it must never panic,
// must return either a scene or a *LoadError with problems, and a scene it
// accepts must satisfy every rule the schema promises.
func FuzzParse(f *testing.F) {
	foundry, err := fs.ReadFile(Builtin(), "foundry/scene.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(foundry)
	f.Add([]byte(validScene))
	samples, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range samples {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("f.yaml", data)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("Parse error %v (%T) is not a *LoadError with problems", err, err)
			}
			if s != nil {
				t.Fatalf("Parse returned a scene and an error")
			}
			for _, p := range le.Problems {
				if p.File != "f.yaml" || p.Msg == "" || p.Line < 0 || p.Column < 0 {
					t.Fatalf("malformed problem %+v", p)
				}
			}
			return
		}
		checkInvariants(t, s)
	})
}

func checkInvariants(t *testing.T, s *Scene) {
	t.Helper()
	finite := func(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }
	if !ident.Valid(s.ID) || s.Name == "" || len(s.PolicyFiles) == 0 {
		t.Fatalf("accepted scene with id %q, name %q, policies %q", s.ID, s.Name, s.PolicyFiles)
	}
	zones := map[string]bool{}
	for _, z := range s.Zones {
		if !ident.Valid(z.ID) || zones[z.ID] {
			t.Fatalf("accepted bad or duplicate zone id %q", z.ID)
		}
		zones[z.ID] = true
		for axis := range 3 {
			if !finite(z.Min[axis]) || !finite(z.Max[axis]) || z.Max[axis] <= z.Min[axis] {
				t.Fatalf("accepted zone %q with min %v max %v", z.ID, z.Min, z.Max)
			}
		}
	}
	for _, tw := range s.Twins {
		if !zones[tw.Zone] {
			t.Fatalf("accepted twin %q in unknown zone %q", tw.ID, tw.Zone)
		}
		for _, a := range tw.Actuators {
			if !finite(a.Min) || !finite(a.Max) || a.Max <= a.Min || !(a.MaxRate > 0) || !finite(a.MaxRate) || !a.Risk.Known() {
				t.Fatalf("accepted actuator %+v", a)
			}
		}
	}
	for _, c := range s.Collections {
		if c.Kind != KindUnique && c.Kind != KindFungible || c.Decimals > 18 {
			t.Fatalf("accepted collection %+v", c)
		}
		for _, m := range c.Mints {
			if m.Amount == nil || m.Amount.Sign() <= 0 || m.Amount.Cmp(maxAmount) > 0 {
				t.Fatalf("accepted mint %+v", m)
			}
		}
	}
}
