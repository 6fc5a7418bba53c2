package policy

// View is a decision as API answers show it: what was asked about which
// resource, the answer, the policies that gave it and, on deny, why.
type View struct {
	Action   string   `json:"action"`
	Resource string   `json:"resource"`
	Allow    bool     `json:"allow"`
	Policies []string `json:"policies"`
	Reason   string   `json:"reason,omitempty"`
}

// ViewOf is d as answers show it. Policies is never null in JSON, so a
// client can always iterate it.
func ViewOf(action string, resource UID, d Decision) View {
	policies := d.Policies
	if policies == nil {
		policies = []string{}
	}
	return View{Action: action, Resource: resource.String(), Allow: d.Allow, Policies: policies, Reason: d.Reason}
}
