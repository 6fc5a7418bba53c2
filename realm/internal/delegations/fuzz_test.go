package delegations

import (
	"bytes"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// FuzzIssueRequest feeds untrusted issue bodies to the strict decoder and
// the domain's checks: nothing panics, and a grant that prepares once
// prepares again to the same digest, which is what lets the owner's
// step-up on the digest answer bind the grant they send back.
func FuzzIssueRequest(f *testing.F) {
	f.Add([]byte(`{"grant":{"v":1,"id":"dg_00112233445566778899aabbccddeeff","iss":"0x0000000000000000000000000000000000000001","owner":"av_1","agent":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","actions":["JoinScene"],"resources":[{"type":"Scene","id":"foundry"}],"limits":{"max_risk":"low"},"iat":"2026-12-05T10:00:00Z","exp":"2026-12-05T11:00:00Z"}}`))
	f.Add([]byte(`{"grant":{"actions":["ApproveCommand"],"limits":{"max_risk":"critical"}}}`))
	f.Add([]byte(`{"grant":{"id":"dg_x","iat":"2026-12-05T10:00:00Z","exp":"2027-12-05T10:00:00Z"}}`))
	issuer := common.HexToAddress("0x0000000000000000000000000000000000000001")
	f.Fuzz(func(t *testing.T, body []byte) {
		var req IssueRequest
		if err := edge.DecodeJSONBytes(body, &req); err != nil {
			return
		}
		d, err := agents.PrepareRoot(req.Grant, issuer)
		if err != nil {
			if agents.ReasonOf(err) == "" {
				t.Fatalf("a refused grant without a reason: %v", err)
			}
			return
		}
		again, err := agents.PrepareRoot(d.Grant, issuer)
		if err != nil || again.Digest != d.Digest {
			t.Fatalf("a prepared grant does not prepare again to its digest: %v", err)
		}
		if d.Grant.ExpiresAt.Sub(d.Grant.IssuedAt) > agents.MaxLifetime {
			t.Fatalf("a grant valid for %s was prepared", d.Grant.ExpiresAt.Sub(d.Grant.IssuedAt))
		}
	})
}

// TestReinstateDigestBindsTheAgent: the step-up that reinstates one agent
// never reinstates another.
func TestReinstateDigestBindsTheAgent(t *testing.T) {
	a, b := ReinstateDigest("ag_00000000000000000000000000000001"), ReinstateDigest("ag_00000000000000000000000000000002")
	if bytes.Equal(a, b) || len(a) != 32 {
		t.Fatalf("digests %x %x", a, b)
	}
	rec := record{AgentID: "ag_1", Expires: time.Unix(100, 0)}
	if v := rec.view(time.Unix(100, 0)); v.State != "expired" {
		t.Fatalf("state at expiry = %s", v.State)
	}
	at := time.Unix(50, 0)
	rec.Revoked = &at
	if v := rec.view(time.Unix(60, 0)); v.State != "revoked" {
		t.Fatalf("state after revocation = %s", v.State)
	}
}
