package agents

import (
	"encoding/json"
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
	state, err := json.Marshal(string(a.trust.State))
	if err != nil {
		return nil, err
	}
	score, err := json.Marshal(a.trust.Score)
	if err != nil {
		return nil, err
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
	b = append(b, score...)
	b = append(b, `,"state":`...)
	b = append(b, state...)
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
