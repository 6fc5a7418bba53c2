package live

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/internal/strictjson"
)

// presenceSamples are control messages of the scene protocol as clients
// send them, good and bad; the fuzz target starts from them.
var presenceSamples = []string{
	`{"type":"join","scene":"foundry"}`,
	`{"type":"leave"}`,
	`{"type":"pose","head":{"pos":[1,1.6,2],"rot":[0,0,0,1]}}`,
	`{"type":"pose","head":{"pos":[1,1.6,2],"rot":[0,0,0,1]},"left":{"pos":[0.8,1.2,2.3],"rot":[0,0.7,0,0.7]},"right":null}`,
	`{"type":"pose","head":{"pos":[1,1.6],"rot":[0,0,0,1]}}`,
	`{"type":"pose","head":{"pos":[1e300,0,0],"rot":[0,0,0,1]}}`,
	`{"type":"join"}`,
	`{"type":"join","scene":"foundry","name":"Guide"}`,
	`{"type":"join","scene":"foundry","name":""}`,
	"{\"type\":\"join\",\"scene\":\"foundry\",\"name\":\"Gu\\u0000ide\"}",
}

// Real signaling messages, as the SDK and Chromium send them.
var signalingSamples = []string{
	`{"type":"ping"}`,
	`{"type":"webrtc.offer","sdp":"v=0\r\no=- 4215432375 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\na=end-of-candidates\r\n"}`,
	`{"type":"webrtc.candidate","candidate":{"candidate":"candidate:1 1 udp 2113937151 127.0.0.1 54400 typ host generation 0 ufrag abcd network-cost 999","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}`,
	`{"type":"webrtc.candidate","candidate":null}`,
	`{"type":"webrtc.candidate","candidate":{"candidate":""}}`,
	`{"type":"webrtc.offer","sdp":""}`,
	`{"type":"teleport"}`,
	`{"type":1}`,
	`[]`,
}

func TestParseLiveMessage(t *testing.T) {
	cases := []struct {
		in      string
		want    string // type, or "" for a refusal
		hasCand bool
	}{
		{signalingSamples[0], "ping", false},
		{signalingSamples[1], "webrtc.offer", false},
		{signalingSamples[2], "webrtc.candidate", true},
		{signalingSamples[3], "webrtc.candidate", false},
		{signalingSamples[5], "", false},
		{signalingSamples[6], "", false},
		{signalingSamples[7], "", false},
		{`{"type":"webrtc.offer","sdp":"not an sdp"}`, "", false},
		{`{"type":"webrtc.candidate","candidate":"candidate:1"}`, "", false},
		// An agent's name: shown to everyone, so a readable one or none.
		{presenceSamples[7], "join", false},
		{presenceSamples[8], "", false},
		{presenceSamples[9], "", false},
		{`{"type":"join","scene":"foundry","name":7}`, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.in[:min(len(tc.in), 40)], func(t *testing.T) {
			m, err := parseLiveMessage([]byte(tc.in))
			if tc.want == "" {
				if err == nil || !errors.Is(err, errLiveMessage) {
					t.Fatalf("parseLiveMessage(%q) = %+v, %v; want a refusal", tc.in, m, err)
				}
				return
			}
			if err != nil || m.Type != tc.want || (m.Candidate != nil) != tc.hasCand {
				t.Fatalf("parseLiveMessage(%q) = %+v, %v; want type %q (candidate %v)", tc.in, m, err, tc.want, tc.hasCand)
			}
		})
	}
}

// FuzzParseLiveMessage: a client's control message never panics the
// parser, and what it accepts is within the documented limits.
func FuzzParseLiveMessage(f *testing.F) {
	for _, s := range signalingSamples {
		f.Add([]byte(s))
	}
	for _, s := range presenceSamples {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"type":"join","scene":"foundry","scene":"other"}`))
	f.Add([]byte("{\"type\":\"join\",\"scene\":\"f\xffoundry\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseLiveMessage(data)
		if err == nil && strictjson.Check(data) != nil {
			t.Fatalf("accepted %q, which has a duplicate member or invalid UTF-8", data)
		}
		if err != nil {
			if !errors.Is(err, errLiveMessage) {
				t.Fatalf("error %v does not wrap errLiveMessage", err)
			}
			return
		}
		switch m.Type {
		case "ping", "leave":
		case "join":
			if m.Scene == "" || len(m.Scene) > maxMidSize {
				t.Fatalf("accepted a join of scene %q", m.Scene)
			}
			if m.Name != "" && avatar.ValidateDisplayName(m.Name) != nil {
				t.Fatalf("accepted a join under the name %q, which a display name may not be", m.Name)
			}
		case "pose":
			if m.Pose == nil || !m.Pose.Head.within() || (m.Pose.Left != nil && !m.Pose.Left.within()) || (m.Pose.Right != nil && !m.Pose.Right.within()) {
				t.Fatalf("accepted pose %+v out of range", m.Pose)
			}
			if _, err := json.Marshal(m.Pose); err != nil {
				t.Fatalf("accepted pose does not marshal: %v", err)
			}
		case "webrtc.offer":
			if m.SDP == "" || len(m.SDP) > maxSDPSize {
				t.Fatalf("accepted an offer of %d bytes", len(m.SDP))
			}
		case "webrtc.candidate":
			if m.Candidate != nil && len(m.Candidate.Candidate) > maxCandidateSize {
				t.Fatalf("accepted a candidate of %d bytes", len(m.Candidate.Candidate))
			}
		default:
			t.Fatalf("accepted unknown type %q", m.Type)
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatalf("accepted message does not marshal: %v", err)
		}
	})
}
