package vr

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Real messages from a realm.
var realmSamples = []string{
	`{"type":"hello","v":1,"session":{"id":"s1"},"avatar":{"id":"a1"},"trust":{"state":"trusted","score":0.7,"at":"2026-11-26T01:21:47Z","factors":[{"name":"passkey","value":1,"effect":"fresh"}],"explanation":"Trusted.","context":{"state":"trusted"}}}`,
	`{"type":"trust","trust":{"state":"step-up","score":0.3,"at":"2026-11-26T01:21:48Z"}}`,
	`{"type":"xr.score","xr":{"at":"2026-11-26T01:21:49Z","seq":144,"time_us":2000000,"probability":0.93,"state":"trusted","score":0.81}}`,
	`{"type":"xr.status","xr":{"at":"2026-11-26T01:21:49Z","transport":"webrtc","frames_accepted":144,"frames_rejected":{"head not tracked":2},"enrollment":"enrolling"}}`,
	`{"type":"webrtc.answer","sdp":"v=0\r\n"}`,
	`{"type":"error","error":"unknown message type \"x\""}`,
	`{"type":"pong"}`,
	`{"type":"joined","scene":"foundry","members":[{"avatar":"av_2","name":"grace","zone":"lobby"}]}`,
	`{"type":"presence","scene":"foundry","avatar":"av_2","name":"grace","event":"join","zone":""}`,
	`{"type":"poses","scene":"foundry","poses":[{"avatar":"av_2","head":{"pos":[0.25,1.625,-0.5],"rot":[0,0.7071068,0,0.7071068]},"right":{"pos":[0.3,1.2,-0.6],"rot":[0,0,0,1]}}]}`,
	`{"type":"error","code":"denied","reason":"entering zone \"press-bay\" was denied: no policy permits it","error":"entering zone \"press-bay\" was denied: no policy permits it"}`,
	`{"type":"presence","scene":"foundry","events":[{"avatar":"av_3","name":"ada","event":"join","zone":""},{"avatar":"av_2","event":"zone","zone":"lobby"},{"avatar":"av_4","event":"leave","zone":""}]}`,
	`{"type":"passkey-added","passkey":{"id":"q83vEjRWeJA","name":"","created":"2026-12-05T17:00:00Z","attestation_format":"none","attested":false,"synced":true},"at":"2026-12-05T17:00:00Z"}`,
}

func TestParseRealmMessage(t *testing.T) {
	cases := []struct {
		in   string
		ok   bool
		want string
	}{
		{realmSamples[0], true, "hello"},
		{realmSamples[2], true, "xr.score"},
		{realmSamples[3], true, "xr.status"},
		{realmSamples[4], true, "webrtc.answer"},
		{realmSamples[12], true, "passkey-added"},
		{`{"type":"passkey-added","passkey":{}}`, false, ""},
		{`{"type":"webrtc.answer"}`, false, ""},
		{`{"type":"xr.score","xr":{"seq":-1}}`, false, ""},
		{`{"v":1}`, false, ""},
		{`nope`, false, ""},
	}
	for _, c := range cases {
		m, err := parseRealmMessage([]byte(c.in))
		if c.ok != (err == nil) || (c.ok && m.Type != c.want) {
			t.Errorf("parseRealmMessage(%q) = %q, %v; want ok=%v type %q", c.in, m.Type, err, c.ok, c.want)
		}
	}
	m, _ := parseRealmMessage([]byte(realmSamples[2]))
	if m.score == nil || m.score.Seq != 144 || m.score.Probability != 0.93 {
		t.Fatalf("xr.score parsed as %+v, want seq 144 and probability 0.93", m.score)
	}
	m, _ = parseRealmMessage([]byte(realmSamples[12]))
	if m.passkeyAdded == nil || m.passkeyAdded.Passkey.ID != "q83vEjRWeJA" || !m.passkeyAdded.Passkey.Synced {
		t.Fatalf("passkey-added parsed as %+v", m.passkeyAdded)
	}
	m, _ = parseRealmMessage([]byte(realmSamples[3]))
	if m.status == nil || m.status.FramesRejected["head not tracked"] != 2 || m.status.Enrollment != "enrolling" {
		t.Fatalf("xr.status parsed as %+v", m.status)
	}
}

// xrEdgeSamples are scores and statuses the one-pass reading must hand
// to the full one, or read as it does.
var xrEdgeSamples = []string{
	`{"type":"xr.score","xr":null}`,
	`{"type":"xr.score"}`,
	`{"type":"xr.score","xr":{"seq":"1"}}`,
	`{"type":"xr.score","xr":{"seq":1},"type":"trust"}`,
	`{"type":"xr.score","xr":{"seq":1},"trust":7}`,
	`{"type":"xr.score","xr":{"seq":1,"at":"yesterday"}}`,
	`{"type":"xr.score","xr":{"seq":1,"frames_accepted":"x"}}`,
	`{"type":"xr.status","xr":{"frames_rejected":{"a":1,"b":-1}}}`,
	`{"type":"xr.status","xr":{"enrollment":"enrolled","frames_accepted":3}} `,
	`{"type":"xr.status","xr":{"enrollment":"enrolled"}}{}`,
	`{"type":"xr.status","XR":{"enrollment":"enrolled"},"sdp":1}`,
}

// FuzzParseRealmMessage: whatever a realm (or something posing as one)
// sends, the SDK's parser returns an error or a message, never panics, and
// a score or status message carries its payload. Its one-pass reading of
// scores and statuses gives what the full reading gives, error or message,
// for every message that does not name xr twice.
func FuzzParseRealmMessage(f *testing.F) {
	for _, s := range append(slices.Clone(realmSamples), xrEdgeSamples...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseRealmMessage(data)
		if full, fullErr := parseRealmMessageInFull(data); !namesXRTwice(data) {
			full.XR, m.XR = nil, nil // kept raw by the full reading only
			if (err == nil) != (fullErr == nil) || err != nil && err.Error() != fullErr.Error() || !reflect.DeepEqual(m, full) {
				t.Fatalf("%q: one pass read %+v, %v; in full %+v, %v", data, m, err, full, fullErr)
			}
		}
		if err != nil {
			return
		}
		if m.Type == "" {
			t.Fatal("accepted a message without a type")
		}
		if m.Type == "xr.score" && m.score == nil || m.Type == "xr.status" && m.status == nil ||
			m.Type == "joined" && m.joined == nil || m.Type == "presence" && m.presence == nil || m.Type == "poses" && m.poses == nil ||
			m.Type == "passkey-added" && m.passkeyAdded == nil {
			t.Fatalf("accepted %s without its payload", m.Type)
		}
		if m.poses != nil {
			for _, p := range m.poses.Poses {
				if p.Avatar == "" || !p.Head.Tracked {
					t.Fatalf("accepted a pose without an avatar or a head: %+v", p)
				}
			}
		}
	})
}

// namesXRTwice says whether data is a JSON object with xr among its names
// more than once (encoding/json matches names without regard to case):
// the one-pass reading merges the two, the full one keeps the last.
func namesXRTwice(data []byte) bool {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if name, _ := tok.(string); strings.EqualFold(name, "xr") {
			seen++
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return seen > 1
}

func TestNamesXRTwice(t *testing.T) {
	for in, want := range map[string]bool{
		`{"type":"xr.score","xr":{"seq":1},"XR":{"state":"x"}}`: true,
		`{"type":"xr.score","xr":{"xr":1,"x":{"xr":2}}}`:        false,
		realmSamples[2]: false,
		`nope`:          false,
	} {
		if got := namesXRTwice([]byte(in)); got != want {
			t.Errorf("namesXRTwice(%s) = %v, want %v", in, got, want)
		}
	}
}
