package twins

import (
	"testing"

	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/twin"
)

func newConsole(session string, queue int, may ...string) *console {
	c := &console{session: session, may: map[string]bool{}, send: make(chan []byte, queue), closed: make(chan struct{})}
	for _, id := range may {
		c.may[id] = true
	}
	return c
}

func (h *feedHub) add(cs ...*console) {
	for _, c := range cs {
		h.conns[c] = struct{}{}
	}
}

func TestFeedSendsAConsoleOnlyItsTwins(t *testing.T) {
	h := newFeedHub()
	press, both := newConsole("s1", 8, "press-1"), newConsole("s2", 8, "press-1", "conveyor-1")
	h.add(press, both)
	h.State("conveyor-1", "belt-speed", twin.State{Value: 1})
	h.Outcome(&command.Answer{Status: command.StatusDone, Command: command.CommandView{Twin: "conveyor-1"}})
	h.Approval(&command.Answer{Status: command.StatusPendingApproval, Command: command.CommandView{Twin: "press-1"}})
	h.push(Message{Type: "about-nothing"})
	if n := len(press.send); n != 1 {
		t.Fatalf("the press console got %d messages, want the approval about the press only", n)
	}
	if n := len(both.send); n != 3 {
		t.Fatalf("the console of both twins got %d messages, want 3", n)
	}
}

func TestFeedClosesAConsoleThatDoesNotKeepUp(t *testing.T) {
	h := newFeedHub()
	slow := newConsole("s1", 1, "press-1")
	h.add(slow)
	h.State("press-1", "ram", twin.State{})
	h.State("press-1", "ram", twin.State{})
	select {
	case <-slow.closed:
	default:
		t.Fatal("a console whose queue is full was not closed")
	}
	if slow.why.code != closeTooSlow {
		t.Fatalf("close code %d, want %d", slow.why.code, closeTooSlow)
	}
}

func TestFeedEndsASessionsConsoles(t *testing.T) {
	h := newFeedHub()
	a1, a2, b := newConsole("a", 1), newConsole("a", 1), newConsole("b", 1)
	h.add(a1, a2, b)
	if n := h.closeSession("a", "session revoked: test"); n != 2 {
		t.Fatalf("closed %d consoles, want the session's 2", n)
	}
	for _, c := range []*console{a1, a2} {
		if c.why.code != closeSessionRevoked || c.why.reason != "session revoked: test" {
			t.Fatalf("close frame %+v, want 4401 with the reason", c.why)
		}
	}
	select {
	case <-b.closed:
		t.Fatal("another session's console was closed")
	default:
	}
	// Only the first ending counts.
	a1.close()
	if a1.why.code != closeSessionRevoked {
		t.Fatal("a later close replaced the close frame")
	}
}

// TestFeedCapsConsolesPerAvatar: an avatar holds at most the cap of
// consoles on a node, whatever its sessions; another avatar is not
// counted against it, a closed console frees its place, and no cap
// admits any number.
func TestFeedCapsConsolesPerAvatar(t *testing.T) {
	h := newFeedHub()
	ofAda := func(session string) *console { c := newConsole(session, 1); c.avatar = "ada"; return c }
	first, second := ofAda("s1"), ofAda("s2")
	if !h.admit(first, 2) || !h.admit(second, 2) {
		t.Fatal("ada's first two consoles refused under a cap of 2")
	}
	if h.admit(ofAda("s1"), 2) || h.admit(ofAda("s3"), 2) {
		t.Fatal("ada's third console admitted under a cap of 2")
	}
	bob := newConsole("s4", 1)
	bob.avatar = "bob"
	if !h.admit(bob, 2) {
		t.Fatal("bob's console refused for ada's")
	}
	h.remove(first)
	if !h.admit(ofAda("s1"), 2) {
		t.Fatal("ada's console refused after one of hers closed")
	}
	for range 10 {
		if !h.admit(ofAda("s5"), 0) {
			t.Fatal("a console refused without a cap")
		}
	}
}
