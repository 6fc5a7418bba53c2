package live

import (
	"errors"
	"testing"

	"github.com/zerorealm/zerorealm/clients/vr"
)

// TestReplacedStampsOrderNewestLast checks the order that decides which of
// two connections made at the same moment on two nodes survives: exactly
// one of them is older.
func TestReplacedStampsOrderNewestLast(t *testing.T) {
	x := liveStamp{At: 10, Node: "a", Seq: 2}
	y := liveStamp{At: 10, Node: "b", Seq: 1}
	if x.before(y) == y.before(x) {
		t.Fatalf("stamps %v and %v: exactly one must be older", x, y)
	}
	if !(liveStamp{At: 9, Node: "z", Seq: 9}).before(x) {
		t.Fatal("an earlier connect time must be older whatever the node")
	}
	if x.before(x) {
		t.Fatal("a stamp is not older than itself")
	}
}

// TestSDKReportsReplaced: the Go SDK tells a replaced connection apart, so
// a client does not reconnect and take the session back.
func TestSDKReportsReplaced(t *testing.T) {
	err := error(&vr.CloseError{Code: closeReplaced, Reason: replacedReason})
	if !errors.Is(err, vr.ErrReplaced) || errors.Is(err, vr.ErrSessionEnded) {
		t.Fatalf("CloseError %d: Is(ErrReplaced) = %v, Is(ErrSessionEnded) = %v", closeReplaced, errors.Is(err, vr.ErrReplaced), errors.Is(err, vr.ErrSessionEnded))
	}
}
