package realm

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/twins"
	"github.com/zerorealm/zerorealm/scenes"
)

// TestTwinViewsAreDecidedByPolicy checks that twins, their feed and their
// approvals are read only by the avatars the scene's policy lets view them
// (ViewTwin): no session is refused with 401, a visitor with 403 and the
// policy's reason (and sees no pending approval), an operator sees them;
// each decision is audited.
func TestTwinViewsAreDecidedByPolicy(t *testing.T) {
	r := startLocalRealm(t)
	waitTwinsLive(t, r)
	ada := newOperator(t, r, "ada", "operator", "supervisor")
	vic := newOperator(t, r, "vic", "visitor")
	anonymous := newClient(t, r)

	// A critical command waiting for its approver.
	standIn(t, r, ada, "control-room")
	body := map[string]any{"op": "set", "value": 40}
	hash := ada.Digest(pressurePath, "view-1", body)
	if status, p := ada.StepUp(ada.Auth, hash); status != 200 {
		t.Fatalf("step-up = %d %+v", status, p)
	}
	if status, p, _, _ := ada.Command(pressurePath, "view-1", body); status != 202 {
		t.Fatalf("critical command = %d %+v, want 202 pending approval", status, p)
	}

	feedURL := "ws" + strings.TrimPrefix(r.URL(), "http") + "/v1/twins/feed"
	dialFeed := func(token string) (*websocket.Conn, int) {
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(feedURL, h)
		if err != nil {
			if resp == nil {
				t.Fatalf("dial the feed: %v", err)
			}
			return nil, resp.StatusCode
		}
		return ws, http.StatusSwitchingProtocols
	}

	for _, path := range []string{"/v1/twins", "/v1/twins/press-1", "/v1/approvals", "/v1/approvals/" + hash} {
		if status, p := anonymous.Call("GET", path, nil, nil); status != 401 {
			t.Errorf("GET %s without a session = %d %+v, want 401", path, status, p)
		}
	}
	if _, status := dialFeed(""); status != 401 {
		t.Errorf("feed without a session = %d, want 401", status)
	}

	for _, path := range []string{"/v1/twins", "/v1/twins/press-1", "/v1/approvals/" + hash} {
		if status, p := vic.Call("GET", path, nil, nil); status != 403 || !strings.Contains(p.Detail, "policy") {
			t.Errorf("GET %s as a visitor = %d %+v, want 403 with the policy's reason", path, status, p)
		}
	}
	if _, status := dialFeed(vic.Token); status != 403 {
		t.Errorf("feed as a visitor = %d, want 403", status)
	}
	// A command's digest names the actuator's risk, part of the twin's
	// view: a visitor is refused it, and told nothing of the risk.
	digestReq, _ := http.NewRequest("POST", r.URL()+pressurePath+"/digest", strings.NewReader(`{"op":"set","value":40}`))
	digestReq.Header.Set("Idempotency-Key", "view-2")
	digestReq.Header.Set("Authorization", "Bearer "+vic.Token)
	digestReq.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(digestReq); err != nil {
		t.Fatal(err)
	} else {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(raw), "policy") || strings.Contains(string(raw), "risk") || strings.Contains(string(raw), "critical") {
			t.Errorf("command digest as a visitor = %d %s, want 403 with the policy's reason and no risk", resp.StatusCode, raw)
		}
	}
	var pending struct {
		Approvals []map[string]any `json:"approvals"`
	}
	vic.Must("GET", "/v1/approvals", nil, &pending)
	if len(pending.Approvals) != 0 {
		t.Errorf("GET /v1/approvals as a visitor = %d approvals, want none", len(pending.Approvals))
	}

	var list struct {
		Twins []twins.TwinView `json:"twins"`
	}
	ada.Must("GET", "/v1/twins", nil, &list)
	if len(list.Twins) != 3 || list.Twins[0].Gateway == "" {
		t.Fatalf("GET /v1/twins as an operator = %+v, want the foundry's 3 twins with their gateways", list.Twins)
	}
	ada.Must("GET", "/v1/twins/press-1", nil, nil)
	ada.Must("GET", "/v1/approvals", nil, &pending)
	if len(pending.Approvals) != 1 {
		t.Fatalf("GET /v1/approvals as an operator = %d approvals, want the pending one", len(pending.Approvals))
	}
	ws, status := dialFeed(ada.Token)
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("feed as an operator = %d, want the upgrade", status)
	}
	defer ws.Close()
	// An avatar holds at most Config.MaxTwinFeedsPerAvatar feeds (4 by
	// default) on a node; one more is refused before the upgrade.
	for range r.cfg.MaxTwinFeedsPerAvatar - 1 {
		more, status := dialFeed(ada.Token)
		if status != http.StatusSwitchingProtocols {
			t.Fatalf("feed within the cap = %d, want the upgrade", status)
		}
		defer more.Close()
	}
	h := http.Header{"Authorization": {"Bearer " + ada.Token}}
	if _, resp, err := websocket.DefaultDialer.Dial(feedURL, h); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests ||
		resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("feed beyond the cap of %d: %v, %+v; want 429 with Retry-After", r.cfg.MaxTwinFeedsPerAvatar, err, resp)
	}
	var hello struct {
		Type  string           `json:"type"`
		Twins []twins.TwinView `json:"twins"`
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != "twins" || len(hello.Twins) != 3 {
		t.Fatalf("first feed message = %+v, %v; want the 3 twins", hello, err)
	}

	eventually(t, "the view decisions are audited", func() bool {
		var denied, allowed bool
		for _, ev := range r.view.Events(audit.Query{Limit: 500}) {
			if ev.Action != scenes.ActionViewTwin {
				continue
			}
			denied = denied || ev.Actor == vic.ID && ev.Outcome == audit.Deny && len(ev.Reasons) > 0 && ev.Reasons[0] != ""
			allowed = allowed || ev.Actor == ada.ID && ev.Outcome == audit.Allow
		}
		return denied && allowed
	})
}
