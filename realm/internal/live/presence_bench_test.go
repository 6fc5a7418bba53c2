package live

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
)

// BenchmarkPoseFanout is the realm's work for one tick of a scene whose
// members all moved since the last: taking each member's pose, encoding it
// once, ranking the recipients due (one in poseRerankEvery) and assembling
// every member's poses message from the fragments. Members stand on a
// square grid a metre apart. cores@20Hz is the share of a core the tick
// takes at 20 Hz; writing to the sockets is not included (bytes/tick says
// how much there is to write).
func BenchmarkPoseFanout(b *testing.B) {
	for _, members := range []int{100, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			f := newFanoutHarness(b)
			side := 1
			for side*side < members {
				side++
			}
			for i := range members {
				f.join(fmt.Sprintf("av_%032d", i))
			}
			f.tick()
			for _, c := range f.conns {
				f.discard(c)
			}
			var tickTime time.Duration
			var bytes, poses int
			step := 0
			for b.Loop() {
				b.StopTimer()
				step++
				for i, c := range f.conns {
					f.moveTo(c, float64(i%side), 1.6+float64(step%100)*0.001, float64(i/side))
				}
				b.StartTimer()
				start := time.Now()
				f.tick()
				tickTime += time.Since(start)
				b.StopTimer()
				for _, c := range f.conns {
					n, p := f.discard(c)
					bytes += n
					poses += p
				}
				b.StartTimer()
			}
			ticks := float64(b.N)
			b.ReportMetric(float64(tickTime.Nanoseconds())/ticks*20/1e9, "cores@20Hz")
			b.ReportMetric(float64(bytes)/ticks, "bytes/tick")
			b.ReportMetric(float64(poses)/ticks, "poses/tick")
		})
	}
}

// BenchmarkPoseFanoutPerRecipientJSON is the same tick done as the realm
// did before fragments and interest: every member's message marshalled on
// its own with every other member's pose. It is here to compare with, in
// the same run.
func BenchmarkPoseFanoutPerRecipientJSON(b *testing.B) {
	for _, members := range []int{100, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			poses := make([]avatarPose, members)
			for i := range poses {
				hand := &poseJSON{Pos: [3]float64{float64(i) + 0.2, 1, 0.25}, Rot: [4]float64{0, 0, 0, 1}}
				poses[i] = avatarPose{Avatar: fmt.Sprintf("av_%032d", i), Head: poseJSON{Pos: [3]float64{float64(i), 1.6, 0}, Rot: [4]float64{0, 0.38268343, 0, 0.9238795}}, Left: hand, Right: hand}
			}
			var bytes int
			others := make([]avatarPose, 0, members)
			for b.Loop() {
				for self := range poses {
					others = append(others[:0], poses[:self]...)
					others = append(others, poses[self+1:]...)
					msg, err := json.Marshal(posesMessage{Type: "poses", Scene: "foundry", Poses: others})
					if err != nil {
						b.Fatal(err)
					}
					bytes += len(msg)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)*20/1e9, "cores@20Hz")
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/tick")
			b.ReportMetric(float64(members*(members-1)), "poses/tick")
		})
	}
}

// BenchmarkMoved is what the newest frame of each message costs presence:
// for an avatar in no scene, as most streaming avatars are, and for one in
// a scene, whose pose the others see.
func BenchmarkMoved(b *testing.B) {
	var frame biometrics.Frame
	for _, p := range []*biometrics.Pose{&frame.Head, &frame.Left, &frame.Right} {
		*p = biometrics.Pose{Pos: [3]float32{0.2, 1.5, -0.3}, Rot: [4]float32{0, 0.38268343, 0, 0.9238795}, Tracked: true}
	}
	for _, inScene := range []bool{false, true} {
		b.Run(fmt.Sprintf("in-scene=%v", inScene), func(b *testing.B) {
			f := newFanoutHarness(b)
			c := &socket{closing: make(chan closeFrame, 1), now: time.Now, presence: f.h}
			if inScene {
				f.h.enter(c, f.scene, "av_moving", "av_moving", Mark{Kind: kindPerson})
			}
			b.ReportAllocs()
			for b.Loop() {
				c.Moved(frame)
			}
			if m := c.member.Load(); (m != nil && m.latest.Load() != nil) != inScene {
				b.Fatalf("in a scene %v, but its pose was kept %v", inScene, m != nil)
			}
		})
	}
}
