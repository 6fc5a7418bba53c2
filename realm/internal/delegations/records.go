package delegations

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/store"
)

// record is what the realm keeps of an issued root: what it granted, not
// the token (useless without the agent's key, but not the realm's to
// keep).
type record struct {
	ID        string            `json:"id"`
	Owner     string            `json:"owner"`
	AgentKey  string            `json:"agent_key"`
	AgentID   string            `json:"agent"`
	Actions   []string          `json:"actions"`
	Resources []agents.Resource `json:"resources"`
	Limits    agents.Limits     `json:"limits"`
	Issuer    string            `json:"issuer"`
	Issued    time.Time         `json:"issued"`
	Expires   time.Time         `json:"expires"`
	Revoked   *time.Time        `json:"revoked,omitempty"`
}

// View is a delegation as its owner sees it.
type View struct {
	record
	// State is active, expired or revoked.
	State string `json:"state"`
	// ReinstateDigest is the action digest of the step-up that lifts the
	// agent's suspension (POST /v1/agents/{agent}/reinstate).
	ReinstateDigest string `json:"reinstate_digest"`
}

func recordOf(g agents.Grant) record {
	return record{
		ID: g.ID, Owner: g.Owner, AgentKey: g.Agent, AgentID: agentIDOf(g),
		Actions: g.Actions, Resources: g.Resources, Limits: g.Limits, Issuer: g.Issuer,
		Issued: g.IssuedAt.UTC(), Expires: g.ExpiresAt.UTC(),
	}
}

func (r record) view(now time.Time) View {
	v := View{record: r, State: "active"}
	switch {
	case r.Revoked != nil:
		v.State = "revoked"
	case !now.Before(r.Expires):
		v.State = "expired"
	}
	v.ReinstateDigest = fmt.Sprintf("0x%x", ReinstateDigest(r.AgentID))
	return v
}

// agentIDOf is the agent id a grant names; "" for a key that does not
// decode (PrepareRoot has refused such a grant already).
func agentIDOf(g agents.Grant) string {
	k, err := base64.RawURLEncoding.DecodeString(g.Agent)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return ""
	}
	return agents.AgentID(ed25519.PublicKey(k))
}

type listed struct {
	key string
	rec record
}

// list reads the owner's records. It lists the bucket's keys: at most
// MaxPerOwner per avatar.
func (a *API) list(ctx context.Context, owner string) ([]listed, error) {
	keys, err := a.Records.Keys(ctx)
	if err != nil {
		return nil, err
	}
	var out []listed
	for _, k := range keys {
		if !strings.HasPrefix(k, ownerPrefix(owner)) {
			continue
		}
		e, err := a.Records.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var r record
		if err := json.Unmarshal(e.Value, &r); err != nil || r.Owner != owner {
			a.Log.Warn("ignoring a delegation record that is not the owner's", "key", k, "err", err)
			continue
		}
		out = append(out, listed{key: k, rec: r})
	}
	return out, nil
}

func (a *API) count(ctx context.Context, owner string) (int, error) {
	keys, err := a.Records.Keys(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, ownerPrefix(owner)) {
			n++
		}
	}
	return n, nil
}
