package identity

import (
	"bytes"
	"errors"
	"testing"

	"github.com/zerorealm/zerorealm/internal/strictjson"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// FuzzFinishRequest feeds the parser of the finish endpoints' bodies
// arbitrary bytes: it must never panic, and everything it refuses must be a
// client error with a message.
func FuzzFinishRequest(f *testing.F) {
	seeds := []string{
		`{"ceremony_id":"abc","credential":{"id":"x","rawId":"x","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA"},"clientExtensionResults":{}}}`,
		`{"ceremony_id":"abc","action_digest":"0x1111111111111111111111111111111111111111111111111111111111111111","credential":{}}`,
		`{"ceremony_id":"abc","credential":null,"use_cookie":true}`,
		`{"ceremony_id":1}`,
		`{"ceremony_id":"abc","ceremony_id":"def","credential":{}}`,
		"{\"ceremony_id\":\"a\xffc\",\"credential\":{}}",
		`{} {}`,
		`[`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req finishRequest
		err := edge.DecodeJSONBytes(body, &req)
		if err == nil && strictjson.Check(body) != nil && len(bytes.TrimSpace(body)) != 0 {
			t.Fatalf("accepted %q, which has a duplicate member or invalid UTF-8", body)
		}
		if err == nil {
			err = req.validate()
		}
		if err == nil {
			_, err = edge.ParseDigest(req.ActionDigest)
		}
		if err == nil {
			if req.CeremonyID == "" || len(req.Credential) == 0 {
				t.Fatalf("accepted %q without a ceremony or credential", body)
			}
			return
		}
		var he *edge.Error
		if !errors.As(err, &he) || he.Status != 400 || he.Detail == "" {
			t.Fatalf("refusal of %q = %v, want a 400 with a detail", body, err)
		}
	})
}
