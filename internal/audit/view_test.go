package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// waitViewed waits until view has applied every block stored so far on
// the given nodes' chains.
func waitViewed(t *testing.T, st *store.Store, view *View, nodes ...string) {
	t.Helper()
	ctx := context.Background()
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, n := range nodes {
		m, err := stream.GetLast(ctx, Subject(n))
		if err != nil {
			t.Fatal(err)
		}
		last = max(last, m.Seq)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := view.WaitApplied(wctx, last); err != nil {
		t.Fatal(err)
	}
}

var (
	viewActions = []string{"JoinScene", "EnterZone", "CommandActuator", "StepUp"}
	viewActors  = []string{"avatar-ada", "avatar-grace"}
	viewEpoch   = time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
)

// mixedEvent is the i-th of a set of decisions by two actors, of several
// actions, on several resources, a second apart.
func mixedEvent(i int) Event {
	ev := Event{
		Actor: viewActors[i%2], Action: viewActions[i%len(viewActions)],
		Resource: fmt.Sprintf(`Twin::"press-%d"`, i%3), Outcome: Allow,
		Time: viewEpoch.Add(time.Duration(i) * time.Second), Policies: []string{"p"},
	}
	if i%5 == 0 {
		ev.Outcome, ev.Reasons, ev.Policies = Deny, []string{"no policy permits it"}, nil
	}
	return ev
}

// TestAuditViewFiltersEachField records decisions of several actions by two
// actors on two nodes and checks every filter against the events filtered
// by hand.
func TestAuditViewFiltersEachField(t *testing.T) {
	ctx := context.Background()
	st := testStore(t)
	view := openView(t, st, 0)
	var recorded []Event // oldest first
	for n, node := range []string{"n1", "n2"} {
		l := openLog(t, st, Config{Node: node, Logger: discard()})
		for i := range 40 {
			ev := mixedEvent(n*40 + i)
			if err := l.Commit(ctx, ev); err != nil {
				t.Fatal(err)
			}
			ev.Node = node
			recorded = append(recorded, ev)
		}
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitViewed(t, st, view, "n1", "n2")

	cases := []struct {
		name  string
		query Query
		want  func(Event) bool
	}{
		{"everything", Query{}, func(Event) bool { return true }},
		{"one action", Query{Actions: []string{"StepUp"}}, func(e Event) bool { return e.Action == "StepUp" }},
		{"two actions", Query{Actions: []string{"JoinScene", "CommandActuator"}}, func(e Event) bool { return e.Action == "JoinScene" || e.Action == "CommandActuator" }},
		{"deny", Query{Outcome: Deny}, func(e Event) bool { return e.Outcome == Deny }},
		{"allow", Query{Outcome: Allow}, func(e Event) bool { return e.Outcome == Allow }},
		{"actor", Query{Actor: "avatar-grace"}, func(e Event) bool { return e.Actor == "avatar-grace" }},
		{"resource", Query{Resource: `Twin::"press-2"`}, func(e Event) bool { return e.Resource == `Twin::"press-2"` }},
		{"node", Query{Node: "n1"}, func(e Event) bool { return e.Node == "n1" }},
		{"since", Query{Since: viewEpoch.Add(70 * time.Second)}, func(e Event) bool { return !e.Time.Before(viewEpoch.Add(70 * time.Second)) }},
		{"until", Query{Until: viewEpoch.Add(10 * time.Second)}, func(e Event) bool { return e.Time.Before(viewEpoch.Add(10 * time.Second)) }},
		{"all at once", Query{Node: "n2", Actor: "avatar-ada", Actions: []string{"JoinScene", "CommandActuator"}, Outcome: Allow, Since: viewEpoch.Add(45 * time.Second), Until: viewEpoch.Add(75 * time.Second)},
			func(e Event) bool {
				return e.Node == "n2" && e.Actor == "avatar-ada" && (e.Action == "JoinScene" || e.Action == "CommandActuator") && e.Outcome == Allow &&
					!e.Time.Before(viewEpoch.Add(45*time.Second)) && e.Time.Before(viewEpoch.Add(75*time.Second))
			}},
		{"no match", Query{Actor: "avatar-nobody"}, func(Event) bool { return false }},
	}
	for _, c := range cases {
		var want []string
		for _, ev := range slices.Backward(recorded) {
			if c.want(ev) {
				want = append(want, ev.Node+"/"+ev.Time.Format(time.TimeOnly))
			}
		}
		q := c.query
		q.Limit = MaxLimit
		page := view.Page(q)
		var got []string
		for _, ev := range page.Events {
			got = append(got, ev.Node+"/"+ev.Time.Format(time.TimeOnly))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %d events %v, want %d %v", c.name, len(got), got, len(want), want)
		}
		if !page.Next.IsZero() || page.Truncated {
			t.Errorf("%s: next %v truncated %v on a page holding every match, want neither", c.name, page.Next, page.Truncated)
		}
	}
	if n := len(view.Page(Query{Actions: []string{"StepUp"}, Limit: 3}).Events); n != 3 {
		t.Errorf("limit 3 gave %d events", n)
	}
}

// TestAuditViewPagesWhileEventsArrive pages through a chain, a few events a
// page, while another writer keeps appending: the pages together hold every
// event that was there when paging began, each once, newest first.
func TestAuditViewPagesWhileEventsArrive(t *testing.T) {
	ctx := context.Background()
	st := testStore(t)
	view := openView(t, st, 0)
	l1 := openLog(t, st, Config{Node: "n1", Logger: discard()})
	defer l1.Close(ctx)
	l2 := openLog(t, st, Config{Node: "n2", Logger: discard()})
	defer l2.Close(ctx)
	for i := range 100 {
		l := l1
		if i%3 == 0 {
			l = l2
		}
		if err := l.Record(ctx, mixedEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitStored(t, l1, 66)
	waitStored(t, l2, 34)
	waitViewed(t, st, view, "n1", "n2")
	before := view.Events(Query{Limit: MaxLimit})
	if len(before) != 100 {
		t.Fatalf("view holds %d events, want 100", len(before))
	}

	// Another writer appends (in blocks of several events) during paging.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 100; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := l2.Record(ctx, mixedEvent(i)); err != nil {
				t.Error(err)
				return
			}
			if i%4 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	})
	var paged []Event
	var cursor Cursor
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		page := view.Page(Query{Before: cursor, Limit: 7})
		if pages == 0 {
			// The first page is the newest, wherever the writer is; begin
			// the comparison at the newest event of the snapshot.
			i := slices.IndexFunc(page.Events, func(e Event) bool { return e.ID == before[0].ID })
			for i < 0 {
				if page.Next.IsZero() {
					t.Fatal("the snapshot's newest event is not in the view")
				}
				cursor = page.Next
				page = view.Page(Query{Before: cursor, Limit: 7})
				i = slices.IndexFunc(page.Events, func(e Event) bool { return e.ID == before[0].ID })
			}
			page.Events = page.Events[i:]
		}
		paged = append(paged, page.Events...)
		if page.Next.IsZero() {
			break
		}
		if !cursor.IsZero() && !page.Next.Less(cursor) {
			t.Fatalf("next cursor %v is not older than %v", page.Next, cursor)
		}
		cursor = page.Next
		time.Sleep(2 * time.Millisecond) // let the writer get ahead
	}
	close(stop)
	wg.Wait()
	if len(paged) != len(before) {
		t.Fatalf("paging gave %d events, want the %d of the snapshot", len(paged), len(before))
	}
	for i := range before {
		if paged[i].ID != before[i].ID {
			t.Fatalf("paged event %d is %s#%d, want %s#%d (no duplicate, none missing)", i, paged[i].Node, paged[i].Index, before[i].Node, before[i].Index)
		}
	}
	if grown := len(view.Events(Query{Limit: MaxLimit})); grown <= 100 {
		t.Fatalf("the writer appended nothing during paging (%d events)", grown)
	}
}

// TestAuditViewSaysWhenItsWindowEnds: a view keeps its newest events only, and
// a page that runs past them says so rather than pretending the log ends.
func TestAuditViewSaysWhenItsWindowEnds(t *testing.T) {
	ctx := context.Background()
	st := testStore(t)
	view := openView(t, st, 6)
	l := openLog(t, st, Config{Node: "n1", Logger: discard()})
	for i := range 10 {
		if err := l.Commit(ctx, mixedEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitViewed(t, st, view, "n1")
	first := view.Page(Query{Limit: 4})
	if len(first.Events) != 4 || first.Next.IsZero() || first.Truncated {
		t.Fatalf("first page: %d events, next %v, truncated %v; want 4, a next page, not truncated", len(first.Events), first.Next, first.Truncated)
	}
	second := view.Page(Query{Limit: 4, Before: first.Next})
	if len(second.Events) != 2 || !second.Next.IsZero() || !second.Truncated {
		t.Fatalf("second page: %d events, next %v, truncated %v; want the 2 left in the window and truncated", len(second.Events), second.Next, second.Truncated)
	}
	if second.Events[1].Index != 5 {
		t.Fatalf("oldest event in the window is #%d, want #5", second.Events[1].Index)
	}
	if gone := view.Page(Query{Before: Cursor{Seq: 1}}); len(gone.Events) != 0 || !gone.Truncated {
		t.Fatalf("a cursor older than the window gave %d events, truncated %v; want none, truncated", len(gone.Events), gone.Truncated)
	}
}

func TestAuditQueryRefusesBadParameters(t *testing.T) {
	cases := []struct{ query, param string }{
		{"acton=StepUp", "acton"},
		{"action=", "action"},
		{"action=StepUp,,JoinScene", "action"},
		{"action=Step%20Up", "action"},
		{"action=" + strings.Repeat("A", 65), "action"},
		{"decision=maybe", "decision"},
		{"outcome=ALLOW", "outcome"},
		{"decision=allow&outcome=deny", "outcome"},
		{"actor=", "actor"},
		{"actor=a&actor=b", "actor"},
		{"actor=%00", "actor"},
		{"actor=%ff", "actor"},
		{"resource=" + strings.Repeat("r", 513), "resource"},
		{"node=realm%20a", "node"},
		{"since=yesterday", "since"},
		{"since=2026-11-26", "since"},
		{"until=2026-11-26T04:00:00", "until"},
		{"since=2026-11-26T05:00:00Z&until=2026-11-26T04:00:00Z", "until"},
		{"since=2026-11-26T05:00:00Z&until=2026-11-26T05:00:00Z", "until"},
		{"before=12", "before"},
		{"before=0:0", "before"},
		{"before=012:1", "before"},
		{"before=12:-1", "before"},
		{"before=12:4294967296", "before"},
		{"before=18446744073709551616:0", "before"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=+5", "limit"},
		{"limit=05", "limit"},
		{"limit=ten", "limit"},
	}
	for _, c := range cases {
		values, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		q, err := ParseQuery(values)
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != c.param || !strings.Contains(err.Error(), `"`+c.param+`"`) {
			t.Errorf("ParseQuery(%s) = %+v, %v; want an error naming %q", c.query, q, err, c.param)
		}
	}
	values, _ := url.ParseQuery("action=StepUp,JoinScene&action=StepUp&decision=deny&outcome=deny&actor=avatar-1&resource=Twin::%22press-1%22&node=realm-a&since=2026-11-26T04:00:00%2B01:00&until=2026-11-26T04:00:00.5Z&before=1042:3&limit=1000")
	q, err := ParseQuery(values)
	if err != nil {
		t.Fatal(err)
	}
	want := Query{Actions: []string{"StepUp", "JoinScene"}, Outcome: Deny, Actor: "avatar-1", Resource: `Twin::"press-1"`, Node: "realm-a",
		Since: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 26, 4, 0, 0, 5e8, time.UTC), Before: Cursor{Seq: 1042, Line: 3}, Limit: 1000}
	if !sameQuery(q, want) {
		t.Fatalf("ParseQuery = %+v, want %+v", q, want)
	}
}

func sameQuery(a, b Query) bool {
	return a.Node == b.Node && a.Actor == b.Actor && slices.Equal(a.Actions, b.Actions) && a.Resource == b.Resource && a.Outcome == b.Outcome &&
		a.Since.Equal(b.Since) && a.Until.Equal(b.Until) && a.Before == b.Before && a.Limit == b.Limit
}

// FuzzAuditQuery: any query string either parses into a query that
// survives a round trip through Values, or is refused naming a parameter
// it has; it never panics.
func FuzzAuditQuery(f *testing.F) {
	for _, s := range []string{
		"", "action=StepUp,JoinScene&action=EnterZone", "decision=deny&outcome=deny", "actor=avatar-1&resource=Twin::%22p%22",
		"node=n1&since=2026-11-26T04:00:00Z&until=2026-11-26T05:00:00.123456789%2B02:00", "before=1042:3&limit=50",
		"before=1:0", "limit=1000", "since=0000-01-01T00:00:00Z", "x=1", "action=,", "before=1:", "%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		values, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(values)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseQuery(%q) = %v, not a *ParamError", raw, err)
			}
			if _, ok := values[pe.Param]; !ok {
				t.Fatalf("ParseQuery(%q) blames %q, which it does not have", raw, pe.Param)
			}
			return
		}
		if q.Limit < 0 || q.Limit > MaxLimit || len(q.Actions) > maxActions {
			t.Fatalf("ParseQuery(%q) = %+v, out of bounds", raw, q)
		}
		again, err := ParseQuery(q.Values())
		if err != nil || !sameQuery(again, q) {
			t.Fatalf("round trip of %q: %+v -> %s -> %+v, %v", raw, q, q.Values().Encode(), again, err)
		}
	})
}

// BenchmarkViewPage queries a full view of DefaultViewSize events stored in
// blocks of 8: the newest page, a filter that few events match (so the
// whole window is scanned), and a page deep in the window.
func BenchmarkViewPage(b *testing.B) {
	v := &View{ring: make([]stored, DefaultViewSize)}
	var block []byte
	for i := range DefaultViewSize {
		ev := mixedEvent(i)
		ev.Node, ev.Index, ev.ID = "n1", uint64(i+1), fmt.Sprintf("%032x", i)
		ev.Signals = map[string]any{"trust": map[string]any{"state": "trusted", "score": 0.93}, "request_id": "r"}
		if i%100 == 0 {
			ev.Actor = "avatar-rare"
		}
		line, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		if len(block) > 0 {
			block = append(block, '\n')
		}
		block = append(block, line...)
		if i%8 == 7 {
			v.add(uint64(i/8+1), block)
			block = nil
		}
	}
	middle := v.Page(Query{Limit: MaxLimit})
	for _, c := range []struct {
		name string
		q    Query
	}{
		{"newest-100", Query{}},
		{"rare-actor-full-scan", Query{Actor: "avatar-rare", Limit: MaxLimit}},
		{"action-and-deny", Query{Actions: []string{"StepUp"}, Outcome: Deny}},
		{"deep-page", Query{Before: middle.Next}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if p := v.Page(c.q); len(p.Events) == 0 {
					b.Fatal("no events")
				}
			}
		})
	}
}
