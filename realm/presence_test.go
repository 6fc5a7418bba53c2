package realm

import (
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestPresenceSurvivesBadInput sends what a broken or hostile client
// might: each earns a clear error or a close with a code, and another
// member keeps receiving poses.
func TestPresenceSurvivesBadInput(t *testing.T) {
	r := startLocalRealm(t)
	poser := newOperator(t, r, "poser")
	watcher := newOperator(t, r, "watcher")
	mallory := newOperator(t, r, "mallory")
	wsP := dialLive(t, r, poser.Sess.Token)
	defer wsP.Close()
	wsW := dialLive(t, r, watcher.Sess.Token)
	defer wsW.Close()
	joinFoundry(t, wsP)
	joinFoundry(t, wsW)

	wsM := dialLive(t, r, mallory.Sess.Token)
	defer wsM.Close()
	for _, tc := range []struct {
		name, msg, code, reason string
	}{
		{"pose before join", poseAt(1, 1, 1), codeNotJoined, "join"},
		{"malformed JSON", `{"type":"join",`, codeInvalid, "JSON"},
		{"unknown type", `{"type":"teleport"}`, codeInvalid, "unknown message type"},
		{"unknown scene", `{"type":"join","scene":"atlantis"}`, codeUnknownScene, "atlantis"},
		{"pose without head", `{"type":"pose","left":{"pos":[0,0,0],"rot":[0,0,0,1]}}`, codeInvalid, "head"},
		{"pose out of range", poseAt(1e9, 0, 0), codeInvalid, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "pose out of range" {
				joinFoundry(t, wsM)
			}
			send(t, wsM, tc.msg)
			m, _ := readUntil(t, wsM, "an error", isType("error"))
			if m.Str("code") != tc.code || !strings.Contains(m.Str("reason"), tc.reason) {
				t.Errorf("answer to %s = %v, want code %q and a reason naming %q", tc.msg, m, tc.code, tc.reason)
			}
		})
	}

	send(t, wsP, poseAt(1, 1.6, 2))
	readUntil(t, wsW, "the poser's pose before the flood", hasPoseOf(poser.ID))

	// A flood: the first messages are answered, then the client is told it
	// is rate-limited, and closed when it does not stop.
	go func() {
		for range 400 {
			if wsM.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)) != nil {
				return
			}
		}
	}()
	if code, reason := waitClosed(t, wsM); code != closeTooManyMessages {
		t.Fatalf("flooding socket closed with %d %q, want %d", code, reason, closeTooManyMessages)
	}

	// An oversized message closes its socket with 1009.
	big := dialLive(t, r, mallory.Sess.Token)
	defer big.Close()
	send(t, big, `{"type":"ping","pad":"`+strings.Repeat("x", liveMaxMessage)+`"}`)
	if code, _ := waitClosed(t, big); code != websocket.CloseMessageTooBig {
		t.Fatalf("oversized message closed the socket with %d, want %d", code, websocket.CloseMessageTooBig)
	}

	send(t, wsP, poseAt(2, 1.6, 2))
	readUntil(t, wsW, "the poser's pose after the abuse", hasPoseOf(poser.ID))
}

// TestZoneDenial walks a visitor from the lobby into the press bay: the
// visitor is told it was denied, and the others hear that it left the
// lobby (it stands in no zone now), never that it entered the press bay.
func TestZoneDenial(t *testing.T) {
	r := startLocalRealm(t)
	visitor := newOperator(t, r, "visitor")
	watcher := newOperator(t, r, "watcher", "operator")
	wsV := dialLive(t, r, visitor.Sess.Token)
	defer wsV.Close()
	wsW := dialLive(t, r, watcher.Sess.Token)
	defer wsW.Close()
	joinFoundry(t, wsW)
	joinFoundry(t, wsV)

	isZoneOf := func(zone string) func(wsMsg) bool {
		return func(m wsMsg) bool {
			return m.Str("type") == "presence" && m.Str("avatar") == visitor.ID && m.Str("event") == "zone" && m.Str("zone") == zone
		}
	}
	send(t, wsV, poseAt(3, 1.6, 4)) // lobby: open
	readUntil(t, wsW, "the visitor entering the lobby", isZoneOf("lobby"))

	send(t, wsV, poseAt(10, 1.6, 4)) // press bay: operators only
	m, _ := readUntil(t, wsV, "the denial", isType("error"))
	if m.Str("code") != codeDenied || !strings.Contains(m.Str("reason"), "press-bay") {
		t.Fatalf("answer to entering the press bay = %v, want code %q naming press-bay", m, codeDenied)
	}
	_, denied := readUntil(t, wsW, "the visitor leaving the lobby for no zone", isZoneOf(""))
	for _, m := range denied {
		if isZoneOf("press-bay")(m) {
			t.Fatalf("watcher was told the visitor entered the press bay: %v", m)
		}
	}
	if s := r.live.WhereIs("foundry", visitor.ID, ""); !s.Present || s.Zone != "" {
		t.Fatalf("after the denial the realm sees the visitor at %+v, want present in no zone", s)
	}

	send(t, wsV, poseAt(20, 1.6, 10)) // walkway: open
	_, before := readUntil(t, wsW, "the visitor entering the walkway", isZoneOf("walkway"))
	for _, m := range before {
		if isZoneOf("press-bay")(m) {
			t.Fatalf("watcher was told the visitor entered the press bay: %v", m)
		}
	}
}
