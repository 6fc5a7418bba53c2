package agents

// Resume re-establishes the agent of a token it presented earlier, for an
// action it asked for and its owner approved later (the approval queue):
// the chain verifies now, and nothing in it is revoked or suspended. No
// proof of possession is asked: the agent is not the one asking now, its
// owner is, and the owner's step-up bound to that action stands in for
// it. The action must still be decided again (Evaluate, then Cedar, then
// Spend).
func (g *Guard) Resume(token string) (*Agent, error) {
	c, err := g.verifier.VerifyToken(token, g.clock.Now())
	if err != nil {
		return nil, err
	}
	if err := g.revoked.Check(c); err != nil {
		return nil, err
	}
	return &Agent{ID: c.AgentID(), Chain: c}, nil
}
