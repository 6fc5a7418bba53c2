package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/zerorealm/zerorealm/clients/vr"
)

// headHistory is how many of an avatar's recent messages can be matched
// with a pose: at 72 Hz and 8 frames a message, about 7 s, longer than
// any delay worth measuring.
const headHistory = 64

// delayBuckets is the delay histogram's range in milliseconds; slower
// poses fall in the last bucket. A histogram, not a list of samples,
// because a thousand avatars receive millions of poses a minute.
const delayBuckets = 10_000

// sentHead is the head of a message's newest frame and when it left.
// The writer clears at before changing the position and sets it after, so
// a reader that sees the same non-zero at before and after its comparison
// compared a whole entry.
type sentHead struct {
	xy atomic.Uint64
	z  atomic.Uint32
	at atomic.Int64 // unix nanoseconds; 0 while being written
}

func headKey(p vr.Pose) (uint64, uint32) {
	return uint64(math.Float32bits(p.Pos[0]))<<32 | uint64(math.Float32bits(p.Pos[1])), math.Float32bits(p.Pos[2])
}

// recordHead remembers the head the realm will make this avatar's pose.
func (a *loadAvatar) recordHead(head vr.Pose, sentAt int64) {
	if !head.Tracked {
		return
	}
	xy, z := headKey(head)
	e := &a.heads[a.headSeq.Load()%headHistory]
	e.at.Store(0)
	e.xy.Store(xy)
	e.z.Store(z)
	e.at.Store(sentAt)
	a.headSeq.Add(1)
}

// headSentAt finds when the message whose newest head is p was sent, newest
// first; ok is false when it is older than the history. Only the avatar's
// own streaming goroutine writes, so the positions compared are exact
// float32 values: the realm widens them to float64 and JSON carries those
// exactly.
func (a *loadAvatar) headSentAt(p vr.Pose) (int64, bool) {
	xy, z := headKey(p)
	n := a.headSeq.Load()
	for i := uint64(0); i < min(n, headHistory); i++ {
		e := &a.heads[(n-1-i)%headHistory]
		at := e.at.Load()
		if at == 0 || e.xy.Load() != xy || e.z.Load() != z {
			continue
		}
		if e.at.Load() == at {
			return at, true
		}
	}
	return 0, false
}

// poseFanout counts what the avatars received from the scene while
// measuring.
type poseFanout struct {
	messages  atomic.Uint64
	poses     atomic.Uint64
	unmatched atomic.Uint64 // a pose whose frame is not in its sender's history
	// What the slow readers received, apart.
	slowMessages, slowPoses atomic.Uint64
	delayMS                 [delayBuckets + 1]atomic.Uint64
	maxNS                   atomic.Int64
}

func (f *poseFanout) observe(d time.Duration) {
	ms := min(max(int(d/time.Millisecond), 0), delayBuckets)
	f.delayMS[ms].Add(1)
	for {
		old := f.maxNS.Load()
		if int64(d) <= old || f.maxNS.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// quantile is the delay at q (0 to 1), at the histogram's millisecond
// resolution; count is how many delays were observed.
func (f *poseFanout) quantile(q float64) (d time.Duration, count uint64) {
	for i := range f.delayMS {
		count += f.delayMS[i].Load()
	}
	if count == 0 {
		return 0, 0
	}
	rank := uint64(math.Round(q*float64(count-1))) + 1
	var seen uint64
	for i := range f.delayMS {
		seen += f.delayMS[i].Load()
		if seen >= rank {
			return time.Duration(i) * time.Millisecond, count
		}
	}
	return delayBuckets * time.Millisecond, count
}

// slowReaderPause is how long a slow reader holds each poses message: at
// most 5 a second, of the realm's 20.
const slowReaderPause = 200 * time.Millisecond

// Keys the pose scanner looks for: the realm writes every pose as
// {"avatar":"…","head":{"pos":[x,y,z],…}…}, avatar first.
var (
	poseAvatarKey  = []byte(`{"avatar":"`)
	poseHeadPosKey = []byte(`"head":{"pos":[`)
)

// receiveRawPoses runs on each avatar's reader goroutine for every poses
// message. It parses nothing it does not need: every pose is counted, and
// only an avatar that times poses reads their ids and head positions.
func (r *loadRun) receiveRawPoses(a *loadAvatar, data []byte) {
	if a.slow {
		if r.measuring.Load() {
			r.fanout.slowMessages.Add(1)
			r.fanout.slowPoses.Add(uint64(bytes.Count(data, poseAvatarKey)))
		}
		// Holding the reader is reading slowly: the socket fills and the
		// realm sees a client that does not keep up.
		time.Sleep(slowReaderPause)
		return
	}
	if !r.measuring.Load() {
		return
	}
	r.fanout.messages.Add(1)
	r.fanout.poses.Add(uint64(bytes.Count(data, poseAvatarKey)))
	if !a.timesPoses {
		return
	}
	now := time.Now().UnixNano()
	for rest := data; ; {
		id, head, next, ok := scanPose(rest)
		if !ok {
			return
		}
		rest = next
		sender := r.byAvatar[string(id)]
		if sender == nil {
			r.fanout.unmatched.Add(1)
			continue
		}
		sent, ok := sender.headSentAt(vr.Pose{Pos: head, Tracked: true})
		if !ok {
			r.fanout.unmatched.Add(1)
			continue
		}
		r.fanout.observe(time.Duration(now - sent))
	}
}

// scanPose finds the next pose in a poses message: its avatar id and head
// position, and what follows it. ok is false when there is none, or it is
// not as the realm writes poses.
func scanPose(data []byte) (id []byte, head [3]float32, rest []byte, ok bool) {
	i := bytes.Index(data, poseAvatarKey)
	if i < 0 {
		return nil, head, nil, false
	}
	data = data[i+len(poseAvatarKey):]
	end := bytes.IndexByte(data, '"')
	if end < 0 {
		return nil, head, nil, false
	}
	id, data = data[:end], data[end:]
	i = bytes.Index(data, poseHeadPosKey)
	if i < 0 {
		return nil, head, nil, false
	}
	data = data[i+len(poseHeadPosKey):]
	for k := range head {
		end := bytes.IndexAny(data, ",]")
		if end <= 0 {
			return nil, head, nil, false
		}
		// strconv copies the text into any error it returns, so the
		// unsafe view of the message is not kept.
		v, err := strconv.ParseFloat(unsafe.String(&data[0], end), 32)
		if err != nil {
			return nil, head, nil, false
		}
		head[k] = float32(v)
		data = data[end+1:]
	}
	return id, head, data, true
}

// joinScene joins every avatar to --scene and indexes them by avatar id,
// so that received poses find their sender.
func (r *loadRun) joinScene(ctx context.Context) error {
	r.byAvatar = make(map[string]*loadAvatar, len(r.avatars))
	for _, a := range r.avatars {
		var av struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(a.client.Hello().Avatar, &av); err != nil || av.ID == "" {
			return fmt.Errorf("avatar %d: the realm's hello names no avatar id", a.i)
		}
		r.byAvatar[av.ID] = a
	}
	start := time.Now()
	err := r.parallel(ctx, "join", func(ctx context.Context, i int) error {
		if _, err := r.avatars[i].client.Join(ctx, r.f.scene); err != nil {
			return err
		}
		r.joined.Add(1)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "join           %d avatars joined scene %s in %s\n", r.f.avatars, r.f.scene, time.Since(start).Round(time.Millisecond))
	return nil
}

func (r *loadRun) reportFanout(measured time.Duration) {
	secs := measured.Seconds()
	n := float64(r.f.avatars - r.f.slowReaders)
	poses := float64(r.fanout.poses.Load()) / secs
	ceiling := interestCeiling(r.f.avatars, r.f.hz/float64(r.f.batch)) * n / float64(r.f.avatars)
	pct := 0.0
	if ceiling > 0 {
		pct = 100 * poses / ceiling
	}
	fmt.Fprintf(r.out, "avatars        %d joined, %d streaming at the end of the run, %d dropped by the realm\n",
		r.joined.Load(), r.streamingAvatars, r.closedCount())
	fmt.Fprintf(r.out, "pose fan-out   delivered %s poses/s to %d avatars (%s per avatar; %.1f%% of the %s/s the realm's interest tiers allow) in %s messages/s\n",
		thousands(poses), int(n), thousands(poses/n), pct, thousands(ceiling), thousands(float64(r.fanout.messages.Load())/secs))
	if slow := r.f.slowReaders; slow > 0 {
		dropped := 0
		for _, a := range r.avatars[r.f.avatars-slow:] {
			if a.client.Err() != nil {
				dropped++
			}
		}
		fmt.Fprintf(r.out, "slow readers   %d avatars reading at most 5 messages/s received %s poses/s each in %s messages/s each (the others: %s each); %d dropped by the realm\n",
			slow, thousands(float64(r.fanout.slowPoses.Load())/secs/float64(slow)), fmt.Sprintf("%.1f", float64(r.fanout.slowMessages.Load())/secs/float64(slow)),
			thousands(poses/n), dropped)
	}
	p50, count := r.fanout.quantile(0.5)
	if count == 0 {
		fmt.Fprintf(r.out, "pose delay     no pose matched while measuring (%d unmatched)\n", r.fanout.unmatched.Load())
		return
	}
	p99, _ := r.fanout.quantile(0.99)
	fmt.Fprintf(r.out, "pose delay     p50 %s  p99 %s  max %s  (%d poses received by 1 avatar in %d, %d unmatched; sender's frame sent -> pose received, matched by head position)\n",
		p50, p99, time.Duration(r.fanout.maxNS.Load()).Round(time.Millisecond), count, r.f.delaySample, r.fanout.unmatched.Load())
}

// interestCeiling is how many poses a second the realm's interest tiers
// deliver to a scene of n members that each move rate times a second
// (clients/PROTOCOL.md): the nearest 32 at every change up to 20 Hz, the
// next 96 at up to 5 Hz, the rest at up to 1 Hz.
func interestCeiling(n int, rate float64) float64 {
	others := float64(max(n-1, 0))
	near := min(others, 32)
	mid := min(others-near, 96)
	far := others - near - mid
	return float64(n) * (near*min(rate, 20) + mid*min(rate, 5) + far*min(rate, 1))
}

// closedCount is how many connections the realm ended before the run did.
func (r *loadRun) closedCount() int {
	n := 0
	for _, a := range r.avatars {
		if a != nil && a.client != nil && a.client.Err() != nil {
			n++
		}
	}
	return n
}

// avatarMessages is each avatar's count of frame messages sent so far.
func (r *loadRun) avatarMessages() []uint64 {
	out := make([]uint64, len(r.avatars))
	for i, a := range r.avatars {
		if a != nil && a.client != nil {
			out[i] = a.client.Stats().Messages + a.posesSent.Load()
		}
	}
	return out
}

// countStreaming is how many avatars sent frames since before and are still
// connected.
func (r *loadRun) countStreaming(before []uint64) int {
	n := 0
	for i, sent := range r.avatarMessages() {
		if a := r.avatars[i]; sent > before[i] && a.client.Err() == nil {
			n++
		}
	}
	return n
}

// reportClosed counts the connections that ended before the run did, by
// reason: an avatar whose connection ended stops streaming, which the
// rates above then undercount.
func (r *loadRun) reportClosed() {
	reasons := map[string]int{}
	closed := 0
	for _, a := range r.avatars {
		if a == nil || a.client == nil || a.client.Err() == nil {
			continue
		}
		closed++
		reasons[closedReason(a.client.Err().Error())]++
	}
	if closed == 0 {
		return
	}
	keys := slices.Sorted(maps.Keys(reasons))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", reasons[k], k))
	}
	fmt.Fprintf(r.out, "closed         %d connections ended before the run did: %s\n", closed, strings.Join(parts, "; "))
}

// connectionAddrs matches the addresses in a network error ("read tcp
// 127.0.0.1:32834->127.0.0.1:18331"): each connection has its own port, so
// with them every lost connection would be a reason of its own.
var connectionAddrs = regexp.MustCompile(`\S+:\d+->\S+:\d+`)

// closedReason is a connection's error with its addresses left out, so
// that a thousand connections reset alike are counted as one reason.
func closedReason(err string) string {
	return connectionAddrs.ReplaceAllString(err, "client->realm")
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
