package policy

import (
	"context"
	"testing"
	"time"
)

// TestObserverHearsEachDecision: an observer hears every evaluated
// decision with its action and effect, none of a request that could not be
// evaluated, and nothing once removed.
func TestObserverHearsEachDecision(t *testing.T) {
	s := loadTestdata(t)
	type heard struct {
		action string
		allow  bool
	}
	var got []heard
	s.Observe(func(action string, allow bool, took time.Duration) {
		if took < 0 {
			t.Errorf("%s took %v", action, took)
		}
		got = append(got, heard{action, allow})
	})
	hall := Entity{UID: UID{"Scene", "hall"}, Attrs: map[string]any{"public": true, "members": []any{}}}
	visitor := avatar("v", trusted(0.9))
	enter := Request{Principal: visitor.UID, Action: UID{"Action", "enter"}, Resource: hall.UID, Entities: []Entity{visitor, hall}}
	d, err := s.Decide(context.Background(), enter)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decide(context.Background(), Request{}); err == nil {
		t.Fatal("an empty request was evaluated")
	}
	if len(got) != 1 || got[0] != (heard{"enter", d.Allow}) {
		t.Fatalf("observer heard %+v, want one enter with allow=%v", got, d.Allow)
	}
	s.Observe(nil)
	if _, err := s.Decide(context.Background(), enter); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("observer heard %d decisions after it was removed", len(got)-1)
	}
}
