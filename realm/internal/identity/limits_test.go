package identity

import (
	"testing"
	"time"
)

func TestPendingCeremoniesAreCapped(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	p := newPendingCeremonies(2, 2*time.Minute, func() time.Time { return now })
	p.begun("a")
	now = now.Add(time.Minute)
	p.begun("b")
	ok, wait := p.admit()
	if ok || wait != time.Minute {
		t.Fatalf("admit at the cap = %v, wait %v; want refused until a expires in 1m", ok, wait)
	}
	p.finished("b")
	if ok, _ := p.admit(); !ok {
		t.Fatal("a finished ceremony still counts")
	}
	p.begun("c")
	if ok, _ := p.admit(); ok {
		t.Fatal("admitted beyond the cap")
	}
	now = now.Add(time.Minute)
	if ok, _ := p.admit(); !ok {
		t.Fatal("an expired ceremony still counts")
	}
}

func TestSessionLimitEndsTheOldestButNeverTheNewOne(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	live := []sessionAge{
		{id: "new", created: base.Add(3 * time.Minute)},
		{id: "b", created: base.Add(time.Minute)},
		{id: "c", created: base.Add(2 * time.Minute)},
		{id: "a", created: base},
	}
	got := oldestFirst(live, "new")
	want := []string{"a", "b", "c"}
	if len(got) != len(want) {
		t.Fatalf("oldestFirst = %v, want ids %v", got, want)
	}
	for i := range want {
		if got[i].id != want[i] {
			t.Fatalf("oldestFirst = %v, want ids %v", got, want)
		}
	}
}
