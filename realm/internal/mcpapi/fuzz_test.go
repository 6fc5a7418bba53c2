package mcpapi

import (
	"encoding/json"
	"testing"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/twin"
)

// FuzzToolArguments feeds each tool's argument decoder (the JSON the SDK
// unmarshals into the tool's arguments, then the tool's own checks) with
// arbitrary bytes: nothing panics, and whatever is accepted is what the
// twin route itself would accept.
func FuzzToolArguments(f *testing.F) {
	f.Add(`{"scene":"foundry"}`)
	f.Add(`{"twin":"conveyor-1"}`)
	f.Add(`{"twin":"conveyor-1","actuator":"belt-speed","key":"k-1","op":"set","value":1.5,"reason":"why"}`)
	f.Add(`{"twin":"press-1","actuator":"ram","key":"k","op":"stop"}`)
	f.Add(`{"twin":"press-1","actuator":"ram","key":"k","op":"set","value":1e309}`)
	f.Add(`{"twin":"","actuator":"ram","key":"k","op":"set","value":-0}`)
	f.Add(`{"twin":"a/b","actuator":"ram","key":"k\u0000","op":"set"}`)
	f.Add(`{"key":"t-1","request":{"intent":{"collection":"gems","assetId":"","amount":"5","from":"0x0000000000000000000000000000000000000001","to":"0x00000000000000000000000000000000000000b0","nonce":"1","deadline":"9999999999"}}}`)
	f.Add(`{"key":"","request":null}`)
	f.Fuzz(func(t *testing.T, data string) {
		var scene sceneArgs
		if json.Unmarshal([]byte(data), &scene) == nil && scene.check() == nil && (scene.Scene == "" || len(scene.Scene) > 64) {
			t.Fatalf("scene_access accepted %q", scene.Scene)
		}
		var tw twinArgs
		if json.Unmarshal([]byte(data), &tw) == nil && tw.check() == nil && !twin.ValidID(tw.Twin) {
			t.Fatalf("twin_state accepted twin %q", tw.Twin)
		}
		var tr transferArgs
		if json.Unmarshal([]byte(data), &tr) == nil {
			if body, err := tr.body(); err == nil {
				// What create_transfer passes on is one JSON object, for
				// the route's own strict decoder.
				var back map[string]any
				if tr.Key == "" || len(tr.Key) > 255 || json.Unmarshal(body, &back) != nil {
					t.Fatalf("create_transfer accepted key %q, body %q", tr.Key, body)
				}
				_, _ = assets.DecodeTransferRequest(body) // must not panic
			}
		}
		var cmd commandArgs
		if json.Unmarshal([]byte(data), &cmd) != nil {
			return
		}
		cr, err := cmd.request()
		if err != nil {
			return
		}
		// Accepted arguments make a command the route accepts.
		c, err := twin.NewCommand(cmd.Twin, cmd.Actuator, "ag_0123456789abcdef0123456789abcdef", cmd.Key, cr)
		if err != nil && twin.ReasonOf(err) != twin.ReasonMalformed {
			t.Fatalf("command_actuator accepted %q, which makes no command: %v", data, err)
		}
		if err == nil && (c.Op != twin.OpSet && c.Op != twin.OpStop) {
			t.Fatalf("command_actuator accepted op %q", c.Op)
		}
	})
}
