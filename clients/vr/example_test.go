package vr_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/zerorealm/zerorealm/clients/vr"
)

// Example streams a headset's motion at 72 Hz over the WebRTC data channel,
// four frames to a message, and prints every trust change the realm pushes.
// The token comes from a passkey sign-in (POST /v1/webauthn/login/finish).
func Example() {
	ctx := context.Background()
	client, err := vr.Dial(ctx, vr.Config{
		URL:       "https://realm.example",
		Token:     "zrs_…",
		Transport: vr.WebRTC,
		OnTrust:   func(t vr.Trust) { fmt.Println("trust:", t.State, t.Score) },
		OnScore:   func(s vr.Score) { fmt.Printf("window up to frame %d: match %.2f\n", s.Seq, s.Probability) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	const hz = 72
	tick := time.NewTicker(4 * time.Second / hz)
	defer tick.Stop()
	start := time.Now()
	var seq uint32
	for range tick.C {
		batch := make([]vr.Frame, 4)
		for i := range batch {
			batch[i] = vr.Frame{
				TimeUS: uint64(time.Since(start).Microseconds()) + uint64(i)*1e6/hz,
				Seq:    seq,
				Head:   vr.Pose{Pos: [3]float32{0, 1.7, 0}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
				// Left, Right: the controllers' poses from the XR runtime.
			}
			seq++
		}
		if err := client.Send(batch); err != nil {
			log.Fatal(err) // the session ended: errors.Is(err, vr.ErrSessionEnded) means sign in again
		}
	}
}

// ExampleClient_Join joins a scene, follows the other members, and places
// the avatar by JSON poses, as a client without a motion stream does.
func ExampleClient_Join() {
	ctx := context.Background()
	client, err := vr.Dial(ctx, vr.Config{
		URL:        "https://realm.example",
		Token:      "zrs_…",
		Transport:  vr.WebSocket,
		OnPresence: func(p vr.Presence) { fmt.Println(p.Name, p.Event, p.Zone) },
		OnPoses:    func(p vr.Poses) { fmt.Println(len(p.Poses), "members moved") },
		OnRefusal:  func(r *vr.RefusalError) { fmt.Println("refused:", r.Reason) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	joined, err := client.Join(ctx, "foundry")
	if errors.Is(err, vr.ErrDenied) {
		log.Fatal("the scene's policies refused: ", err)
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(joined.Members), "others in", joined.Scene)

	head := vr.Pose{Pos: [3]float32{0, 1.7, 0}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true}
	if err := client.SendPose(vr.BodyPose{Head: head}); err != nil {
		log.Fatal(err)
	}
}
