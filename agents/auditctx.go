package agents

import (
	"encoding/json"
	"math"
	"strconv"
)

// auditContext is context.agent as an audit record writes it: the JSON
// that encoding Decision.Context gives, byte for byte, with the chain's
// part (its agents, delegations, depth, the leaf's limits, the owner)
// encoded once per chain rather than on every action. An agent's record
// cost several times a person's to encode before, all of it in sorting and
// reflecting over the same maps.
type auditContext struct {
	chain         *Chain
	trust         Assessment
	used          string // "day_value", "minute_commands" or "" (nothing read)
	usedValue     uint64
	needsApproval bool
	approved      bool
}

// auditParts are the chain's encoded keys of context.agent, in the order
// encoding/json writes a map's keys: between "approved" and
// "needs_approval" (chain ... limits), and "owner".
type auditParts struct {
	mid, owner []byte
}

func (c *Chain) auditParts() auditParts {
	m := c.derived()
	m.auditOnce.Do(func() {
		l := c.Leaf().Limits
		mid, err := json.Marshal(map[string]any{
			"chain": m.agents, "delegation": c.Leaf().ID, "delegations": m.ids,
			"depth": int64(len(c.Blocks)), "id": m.id,
			"limits": map[string]any{
				"transfer_value": long(l.TransferValue), "daily_value": long(l.DailyValue),
				"auto_approve_value": long(l.AutoApproveValue), "commands_per_minute": int64(l.CommandsPerMinute),
				"max_risk": string(l.MaxRisk),
			},
		})
		owner, err2 := json.Marshal(map[string]any{"owner": ownerUID(c.Owner())})
		if err != nil || err2 != nil {
			return // left empty: MarshalJSON falls back to the map
		}
		m.audit = auditParts{mid: mid[1 : len(mid)-1], owner: owner[1 : len(owner)-1]}
	})
	return m.audit
}

// MarshalJSON writes the keys in encoding/json's order for a map:
// approved, chain, delegation, delegations, depth, id, limits,
// needs_approval, owner, trust, used.
func (a auditContext) MarshalJSON() ([]byte, error) {
	p := a.chain.auditParts()
	if p.mid == nil {
		return json.Marshal(a.asMap())
	}
	b := make([]byte, 0, 128+len(p.mid)+len(p.owner))
	b = append(b, `{"approved":`...)
	b = strconv.AppendBool(b, a.approved)
	b = append(b, ',')
	b = append(b, p.mid...)
	b = append(b, `,"needs_approval":`...)
	b = strconv.AppendBool(b, a.needsApproval)
	b = append(b, ',')
	b = append(b, p.owner...)
	b = append(b, `,"trust":{"score":`...)
	b, err := appendJSONFloat(b, a.trust.Score)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"state":`...)
	if b, err = appendJSONString(b, string(a.trust.State)); err != nil {
		return nil, err
	}
	b = append(b, `},"used":{`...)
	if a.used != "" {
		b = append(b, '"')
		b = append(b, a.used...)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, long(a.usedValue), 10)
	}
	return append(b, "}}"...), nil
}

// asMap is the same as Decision.Context.
func (a auditContext) asMap() map[string]any {
	used := map[string]any{}
	if a.used != "" {
		used[a.used] = long(a.usedValue)
	}
	return AgentContext(&Agent{ID: a.chain.AgentID(), Chain: a.chain}, a.trust, used, a.needsApproval, a.approved)
}

// AuditContext is context.agent for the decision's audit record: it
// encodes to the same JSON as Context, at a fraction of the cost. A
// Decision the Guard did not make answers Context.
func (d Decision) AuditContext() any {
	if d.audit.chain == nil {
		return d.Context
	}
	return d.audit
}

// appendJSONFloat appends f as encoding/json writes a float64. A score
// lies in [0, 1], where that is strconv's shortest 'f' form; anything
// else (exponent form, NaN) is left to encoding/json.
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if abs := math.Abs(f); abs == 0 || abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(b, f, 'f', -1, 64), nil
	}
	v, err := json.Marshal(f)
	return append(b, v...), err
}

// appendJSONString appends s as encoding/json writes a string: a trust
// state's plain letters as they are, anything that JSON or its HTML
// escaping would change through encoding/json.
func appendJSONString(b []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == ' ') {
			v, err := json.Marshal(s)
			return append(b, v...), err
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), nil
}
