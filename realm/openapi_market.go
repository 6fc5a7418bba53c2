package realm

// signersSchema is GET /v1/assets/signers's answer in the OpenAPI document.
func signersSchema() map[string]any {
	return obj(map[string]any{
		"self": map[string]any{"type": "string", "description": "the node that answered"},
		"signers": map[string]any{"type": "array", "items": obj(map[string]any{
			"node":    strT,
			"address": addrT,
			"since":   map[string]any{"type": "string", "format": "date-time", "description": "the key did not exist before: nothing it signed is older"},
			"until":   map[string]any{"type": "string", "format": "date-time", "description": "retired keys: the node no longer signed with it from then on"},
			"current": map[string]any{"type": "boolean", "description": "the node signs with it now"},
		}, "node", "address", "since", "current")},
	}, "self", "signers")
}
