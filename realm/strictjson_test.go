package realm

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// corrupt returns two variants of a JSON body: one where member (a string)
// is written a second time, first, with another value, and one where that
// member's value holds a byte that is not UTF-8.
func corrupt(t *testing.T, body []byte, member, other string) (duplicate, invalidUTF8 []byte) {
	t.Helper()
	if body[0] != '{' {
		t.Fatalf("body %s is not an object", body)
	}
	duplicate = append([]byte(`{"`+member+`":"`+other+`",`), body[1:]...)
	key := `"` + member + `":"`
	i := strings.Index(string(body), key)
	if i < 0 {
		t.Fatalf("body %s has no string member %q", body, member)
	}
	at := i + len(key)
	invalidUTF8 = append(append(append([]byte{}, body[:at]...), 0xff), body[at:]...)
	return duplicate, invalidUTF8
}

// TestDuplicateMembersAndInvalidUTF8AreRefused sends a WebAuthn finish, an
// asset transfer and a twin command each with a member written twice and
// with a byte that is not UTF-8: every one is refused with 400 and changes
// nothing, which the genuine body, sent afterwards, proves by succeeding
// as a first attempt. On the realm WebSocket the same mistakes close the
// connection with 1007.
func TestDuplicateMembersAndInvalidUTF8AreRefused(t *testing.T) {
	r := startRealm(t, Config{Listen: "localhost:0", ScenesDir: marketScenes})
	refused := func(t *testing.T, what string, code int, p edge.Problem, want string) {
		t.Helper()
		if code != 400 || !strings.Contains(p.Detail, want) {
			t.Fatalf("%s = %d %q, want 400 naming %q", what, code, p.Detail, want)
		}
	}

	t.Run("webauthn finish", func(t *testing.T) {
		c := newClient(t, r)
		auth := webauthntest.New()
		c.Register(auth, "dora")
		body := []byte(toJSON(c.BeginLogin(auth, "dora")))
		dup, bad := corrupt(t, body, "ceremony_id", "someone-elses")
		code, p := c.Call("POST", "/v1/webauthn/login/finish", dup, nil)
		refused(t, "finish with ceremony_id twice", code, p, `duplicate member "ceremony_id"`)
		code, p = c.Call("POST", "/v1/webauthn/login/finish", bad, nil)
		refused(t, "finish with invalid UTF-8", code, p, "invalid UTF-8")
		// The ceremony was not used up: the genuine assertion signs in.
		var sess sessionAnswer
		c.Must("POST", "/v1/webauthn/login/finish", body, &sess)
		if sess.Token == "" {
			t.Fatal("genuine finish after the refusals gave no session")
		}
	})

	t.Run("asset transfer", func(t *testing.T) {
		ada := newMarketUser(t, r, "ada")
		bob := newMarketUser(t, r, "bob")
		mint(t, r, "gems", "", ada.Wallet, 500)
		body := []byte(toJSON(ada.SignedTransfer(t, intent("gems", "", 100, ada.Wallet, bob.Wallet, 1, deadlineIn(time.Hour)), ada.Key)))
		dup, bad := corrupt(t, body, "signature", "0x00")
		// The intent's amount twice: encoding/json would take the last.
		inflated := []byte(strings.Replace(string(body), `"amount":"100"`, `"amount":"100","amount":"400"`, 1))
		for _, tc := range []struct {
			name string
			body []byte
			want string
		}{
			{"signature twice", dup, `duplicate member "signature"`},
			{"amount twice", inflated, `duplicate member "amount" at "/intent"`},
			{"invalid UTF-8", bad, "invalid UTF-8"},
		} {
			code, p := ada.C.Call("POST", "/v1/assets/transfers", tc.body, nil)
			refused(t, "transfer with "+tc.name, code, p, tc.want)
		}
		if got, _ := balanceOf(r, "gems", ada.Wallet); got != 500 {
			t.Fatalf("ada's balance after the refusals = %d, want 500", got)
		}
		ada.C.Must("POST", "/v1/assets/transfers", body, nil)
		if got, _ := balanceOf(r, "gems", bob.Wallet); got != 100 {
			t.Fatalf("bob's balance after the genuine transfer = %d, want 100 (nonce 1 was still unused)", got)
		}
	})

	// The foundry's twins are on a realm of the shipped scenes.
	foundry := startLocalRealm(t)
	t.Run("twin command", func(t *testing.T) {
		waitTwinsLive(t, foundry)
		ada := newOperator(t, foundry, "ada", "operator")
		standIn(t, foundry, ada, "conveyor-line")
		body := []byte(`{"op":"set","value":1,"reason":"test","zone":"conveyor-line"}`)
		for _, tc := range []struct {
			name string
			body []byte
			want string
		}{
			{"value twice", []byte(`{"op":"set","value":1,"value":2.4,"reason":"test"}`), `duplicate member "value"`},
			{"value twice, by case", []byte(`{"op":"set","value":1,"Value":2.4,"reason":"test"}`), `duplicate member "Value"`},
			{"invalid UTF-8", []byte("{\"op\":\"set\",\"value\":1,\"reason\":\"t\xffst\"}"), "invalid UTF-8"},
		} {
			code, p, _, _ := ada.Command(beltPath, "k-strict", tc.body)
			refused(t, "command with "+tc.name, code, p, tc.want)
		}
		// Nothing was kept under the key: the genuine command is not a
		// conflicting reuse of it, and the gateway sets what it says.
		code, p, ans, hdr := ada.Command(beltPath, "k-strict", body)
		if code != 200 || hdr.Get("Idempotent-Replayed") != "" || ans.Ack == nil || ans.Ack.Target != 1 {
			t.Fatalf("genuine command after the refusals = %d %+v %+v, want done with target 1", code, p, ans)
		}
	})

	t.Run("websocket", func(t *testing.T) {
		mallory := newOperator(t, foundry, "mallory")
		for _, tc := range []struct{ name, msg, want string }{
			{"type twice", `{"type":"ping","type":"join","scene":"foundry"}`, `duplicate member "type"`},
			{"invalid UTF-8", "{\"type\":\"join\",\"scene\":\"f\xffoundry\"}", "invalid UTF-8"},
		} {
			ws := dialLive(t, foundry, mallory.Sess.Token)
			send(t, ws, tc.msg)
			code, reason := waitClosed(t, ws)
			ws.Close()
			if code != websocket.CloseInvalidFramePayloadData || !strings.Contains(reason, tc.want) {
				t.Fatalf("%s: socket closed with %d %q, want %d naming %q", tc.name, code, reason, websocket.CloseInvalidFramePayloadData, tc.want)
			}
		}
	})
}
