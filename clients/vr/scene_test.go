package vr

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseSceneMessages(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"joined", realmSamples[7], true},
		{"joined alone", `{"type":"joined","scene":"foundry","members":[]}`, true},
		{"presence", realmSamples[8], true},
		{"poses", realmSamples[9], true},
		{"joined without scene", `{"type":"joined","members":[]}`, false},
		{"member without avatar", `{"type":"joined","scene":"s","members":[{"name":"x"}]}`, false},
		{"presence without avatar", `{"type":"presence","scene":"s","event":"join"}`, false},
		{"presence of unknown event", `{"type":"presence","scene":"s","avatar":"a","event":"dance"}`, false},
		{"pose without head", `{"type":"poses","scene":"s","poses":[{"avatar":"a"}]}`, false},
		{"pose without avatar", `{"type":"poses","scene":"s","poses":[{"head":{"pos":[0,0,0],"rot":[0,0,0,1]}}]}`, false},
		{"short position", `{"type":"poses","scene":"s","poses":[{"avatar":"a","head":{"pos":[0,0],"rot":[0,0,0,1]}}]}`, false},
		{"long rotation", `{"type":"poses","scene":"s","poses":[{"avatar":"a","head":{"pos":[0,0,0],"rot":[0,0,0,1,0]}}]}`, false},
		{"beyond float32", `{"type":"poses","scene":"s","poses":[{"avatar":"a","head":{"pos":[1e39,0,0],"rot":[0,0,0,1]}}]}`, false},
		{"bad hand", `{"type":"poses","scene":"s","poses":[{"avatar":"a","head":{"pos":[0,0,0],"rot":[0,0,0,1]},"left":{"pos":[0,0,0]}}]}`, false},
		{"poses not a list", `{"type":"poses","scene":"s","poses":{}}`, false},
		{"presence events", realmSamples[11], true},
		{"presence event of unknown kind", `{"type":"presence","scene":"s","events":[{"avatar":"a","event":"join"},{"avatar":"b","event":"dance"}]}`, false},
		{"presence event without avatar", `{"type":"presence","scene":"s","events":[{"event":"leave"}]}`, false},
		{"presence with avatar and events", `{"type":"presence","scene":"s","avatar":"a","event":"join","events":[]}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseRealmMessage([]byte(c.in))
			if c.ok != (err == nil) {
				t.Errorf("parseRealmMessage(%q) = %v, want ok=%v", c.in, err, c.ok)
			}
		})
	}

	m, err := parseRealmMessage([]byte(realmSamples[7]))
	if err != nil || m.joined == nil || len(m.joined.Members) != 1 || m.joined.Members[0] != (Member{Avatar: "av_2", Name: "grace", Zone: "lobby"}) {
		t.Fatalf("parseRealmMessage(joined) = %+v, %v; want member av_2 grace in lobby", m.joined, err)
	}
	m, err = parseRealmMessage([]byte(realmSamples[8]))
	if err != nil || len(m.presence) != 1 || m.presence[0] != (Presence{Scene: "foundry", Avatar: "av_2", Name: "grace", Event: PresenceJoin}) {
		t.Fatalf("parseRealmMessage(presence) = %+v, %v; want grace joining foundry", m.presence, err)
	}
	m, err = parseRealmMessage([]byte(realmSamples[11]))
	wantEvents := []Presence{
		{Scene: "foundry", Avatar: "av_3", Name: "ada", Event: PresenceJoin},
		{Scene: "foundry", Avatar: "av_2", Event: PresenceZone, Zone: "lobby"},
		{Scene: "foundry", Avatar: "av_4", Event: PresenceLeave},
	}
	if err != nil || !slices.Equal(m.presence, wantEvents) {
		t.Fatalf("parseRealmMessage(presence with events) = %+v, %v; want %+v", m.presence, err, wantEvents)
	}
	// An agent's join carries its mark, in an events list as at the top.
	m, err = parseRealmMessage([]byte(`{"type":"presence","scene":"foundry","events":[{"avatar":"ag_1","name":"Guide","event":"join","zone":"","kind":"agent","agent":"ag_1","on_behalf_of":{"avatar":"av_1","handle":"oskar","depth":2,"via":"ag_0"}}]}`))
	if err != nil || len(m.presence) != 1 || m.presence[0].Kind != KindAgent || m.presence[0].Agent != "ag_1" ||
		m.presence[0].OnBehalfOf == nil || *m.presence[0].OnBehalfOf != (OnBehalfOf{Avatar: "av_1", Handle: "oskar", Depth: 2, Via: "ag_0"}) {
		t.Fatalf("parseRealmMessage(an agent's join) = %+v, %v; want it marked as oskar's agent through ag_0", m.presence, err)
	}
	m, err = parseRealmMessage([]byte(realmSamples[9]))
	if err != nil || m.poses == nil || len(m.poses.Poses) != 1 {
		t.Fatalf("parseRealmMessage(poses) = %+v, %v; want one pose", m.poses, err)
	}
	got := m.poses.Poses[0]
	want := MemberPose{Avatar: "av_2", BodyPose: BodyPose{
		Head:  Pose{Pos: [3]float32{0.25, 1.625, -0.5}, Rot: [4]float32{0, 0.7071068, 0, 0.7071068}, Tracked: true},
		Right: Pose{Pos: [3]float32{0.3, 1.2, -0.6}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
	}}
	if got != want {
		t.Errorf("poses[0] = %+v, want %+v", got, want)
	}
}

func TestRefusalError(t *testing.T) {
	m, err := parseRealmMessage([]byte(realmSamples[10]))
	if err != nil || m.Code != CodeDenied || m.Reason == "" {
		t.Fatalf("parseRealmMessage(refusal) = code %q reason %q, %v; want denied with a reason", m.Code, m.Reason, err)
	}
	cases := []struct {
		code string
		want error
	}{
		{CodeDenied, ErrDenied},
		{CodeUnknownScene, ErrUnknownScene},
		{CodeAlreadyJoined, ErrAlreadyJoined},
		{CodeNotJoined, ErrNotJoined},
		{CodeRateLimited, ErrRateLimited},
	}
	for _, c := range cases {
		err := error(&RefusalError{Code: c.code, Reason: "because"})
		if !errors.Is(err, c.want) {
			t.Errorf("errors.Is(RefusalError{%q}, %v) = false, want true", c.code, c.want)
		}
		if errors.Is(err, ErrSessionEnded) {
			t.Errorf("errors.Is(RefusalError{%q}, ErrSessionEnded) = true, want false", c.code)
		}
	}
	if errors.Is(&RefusalError{Code: CodeInvalid}, ErrDenied) {
		t.Error("errors.Is(RefusalError{invalid}, ErrDenied) = true, want false")
	}
}

// The pose a client sends is what the protocol documents: untracked hands
// absent, numbers as the float32 values the engine has.
func TestPoseMessage(t *testing.T) {
	cases := []struct {
		name string
		in   BodyPose
		want string
	}{
		{"head only", BodyPose{Head: Pose{Pos: [3]float32{0, 1.5, 0}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true}},
			`{"type":"pose","head":{"pos":[0,1.5,0],"rot":[0,0,0,1]}}`},
		{"left hand", BodyPose{
			Head: Pose{Pos: [3]float32{0, 1.5, 0}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
			Left: Pose{Pos: [3]float32{-0.25, 1, -0.25}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
		}, `{"type":"pose","head":{"pos":[0,1.5,0],"rot":[0,0,0,1]},"left":{"pos":[-0.25,1,-0.25],"rot":[0,0,0,1]}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := json.Marshal(newPoseMessage(c.in))
			if err != nil || string(got) != c.want {
				t.Errorf("newPoseMessage(%+v) = %s, %v; want %s", c.in, got, err, c.want)
			}
		})
	}
}

// BenchmarkParsePoses is what a member of a busy scene spends reading one
// poses message, by the number of members that moved.
func BenchmarkParsePoses(b *testing.B) {
	for _, members := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			var sb strings.Builder
			sb.WriteString(`{"type":"poses","scene":"foundry","poses":[`)
			for i := range members {
				if i > 0 {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, `{"avatar":"av_%08d","head":{"pos":[0.12345679,1.6234568,-0.4876543],"rot":[0.012345679,0.70710677,-0.012345679,0.70710677]},"left":{"pos":[-0.2345679,1.1234568,-0.6876543],"rot":[0,0,0,1]},"right":{"pos":[0.2345679,1.1234568,-0.6876543],"rot":[0,0,0,1]}}`, i)
			}
			sb.WriteString(`]}`)
			data := []byte(sb.String())
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := parseRealmMessage(data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*members), "ns/pose")
		})
	}
}
