package xr

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/netstamp"
	"github.com/zerorealm/zerorealm/internal/testlog"
)

// scriptedChannel is a detached data channel's read side that returns
// queued messages as pion's does: one that does not fit the buffer stays
// queued, and io.ErrShortBuffer comes back without its length.
type scriptedChannel struct {
	queue  [][]byte
	texts  map[int]bool
	served int
	// shortReads counts the reads into too short a buffer.
	shortReads int
}

func (c *scriptedChannel) ReadDataChannel(p []byte) (int, bool, error) {
	if len(c.queue) == 0 {
		return 0, false, io.EOF
	}
	m := c.queue[0]
	if len(m) > len(p) {
		c.shortReads++
		return 0, false, io.ErrShortBuffer
	}
	c.queue = c.queue[1:]
	isText := c.texts[c.served]
	c.served++
	return copy(p, m), isText, nil
}

// TestReadMessagesHandsOnWhatItCannotHold: a message longer than a frame
// message is handed on whole (to be refused), text is flagged, and a
// message beyond what the realm reads ends the channel without being
// handed on.
func TestReadMessagesHandsOnWhatItCannotHold(t *testing.T) {
	long := bytes.Repeat([]byte{7}, biometrics.MaxMessageSize+100)
	ch := &scriptedChannel{
		queue: [][]byte{[]byte("frames"), []byte("text"), long, []byte("after"), make([]byte, xrMaxReadMessage+1), []byte("never")},
		texts: map[int]bool{1: true},
	}
	var got []string
	var gotText []bool
	err := readMessages(ch, func(msg []byte, isString bool) {
		if bytes.Equal(msg, long) {
			got = append(got, "long")
		} else {
			got = append(got, string(msg))
		}
		gotText = append(gotText, isString)
	})
	if !errors.Is(err, errMessageTooLarge) {
		t.Fatalf("readMessages = %v, want errMessageTooLarge", err)
	}
	want := []string{"frames", "text", "long", "after"}
	if len(got) != len(want) {
		t.Fatalf("handed on %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] || gotText[i] != (i == 1) {
			t.Fatalf("message %d = %q (text %v), want %q (text %v)", i, got[i], gotText[i], want[i], i == 1)
		}
	}
	// The long message took one doubling; the one beyond the limit every
	// doubling up to it.
	if ch.shortReads < 2 || ch.shortReads > 12 {
		t.Fatalf("%d reads into too short a buffer, want a doubling each", ch.shortReads)
	}

	// A channel that ends is the end of reading, and no error of the
	// realm's.
	if err := readMessages(&scriptedChannel{}, func([]byte, bool) { t.Fatal("nothing to hand on") }); !errors.Is(err, io.EOF) {
		t.Fatalf("readMessages on a closed channel = %v, want io.EOF", err)
	}
}

// stampedRead is what the realm's reader of a data channel saw when a
// message came: its wait, its sockets' stamp just after, and when it
// read the message.
type stampedRead struct {
	held    time.Duration
	stamped bool
	stamp   time.Time
	readAt  time.Time
}

// stampedPeer connects a client of clientAPI to a peer connection of api,
// whose reader reports each message's stamp on the channel it returns,
// and reads nothing more until the report is taken.
func stampedPeer(ctx context.Context, t *testing.T, api *webrtcAPI, clientAPI *webrtc.API) (*webrtc.DataChannel, *netstamp.UDPGroup, <-chan stampedRead) {
	t.Helper()
	realm, stamps, err := api.newPeerConnection()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { realm.Close() })
	if stamps == nil {
		t.Fatal("a peer connection of the realm's own sockets without a group of stamps")
	}
	client, err := clientAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	reads := make(chan stampedRead)
	realm.OnDataChannel(func(dc *webrtc.DataChannel) {
		readDatedDetached(t, dc, stamps, func(held time.Duration, stamped bool) {
			at, _ := stamps.Received()
			select {
			case reads <- stampedRead{held: held, stamped: stamped, stamp: at, readAt: time.Now()}:
			case <-ctx.Done():
			}
		})
	})
	return openXRChannel(ctx, t, client, realm), stamps, reads
}

// A data channel message through the realm's own sockets is dated by
// them: no earlier than it was sent, no later than its read, and by its
// own peer connection's sockets, never another's.
func TestDataChannelMessagesCarryTheirSocketsStamp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api, err := newWebRTCAPI(webrtcNet{}, true, testlog.New(t))
	if err != nil {
		t.Fatal(err)
	}
	dcA, _, readsA := stampedPeer(ctx, t, api, lean(true))
	_, stampsB, _ := stampedPeer(ctx, t, api, lean(true))
	msg, err := vr.AppendMessage(nil, benchFrames(8))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		sent := time.Now()
		if err := dcA.Send(msg); err != nil {
			t.Fatal(err)
		}
		var r stampedRead
		select {
		case r = <-readsA:
		case <-ctx.Done():
			t.Fatalf("message %d not read", i)
		}
		if !r.stamped {
			t.Fatalf("message %d read without a stamp", i)
		}
		if r.stamp.Before(sent) || r.stamp.After(r.readAt) || r.held > r.readAt.Sub(sent) {
			t.Fatalf("message %d stamped %v, held %v: want no earlier than it was sent (%v) and no later than its read (%v)", i, r.stamp, r.held, sent, r.readAt)
		}
		if other, _ := stampsB.Received(); other.Equal(r.stamp) {
			t.Fatalf("message %d's stamp %v is also the other peer connection's", i, r.stamp)
		}
	}
}

// A message the realm reads late is dated by its datagram's arrival,
// not by when the data channel handed it on: the reader is held on the
// message before it while the next one arrives, and the next one's stamp
// is its own datagram's, from before the reader was let go. Both ends'
// ICE keepalives are off, so that the message is the only datagram.
func TestDataChannelMessageReadLateKeepsItsArrival(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api, err := newWebRTCAPI(webrtcNet{}, true, testlog.New(t))
	if err != nil {
		t.Fatal(err)
	}
	const quiet = time.Hour
	api.se.SetICETimeouts(quiet, quiet, quiet)
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(quiet, quiet, quiet)
	dc, stamps, reads := stampedPeer(ctx, t, api, webrtc.NewAPI(webrtc.WithSettingEngine(se)))
	msg, err := vr.AppendMessage(nil, benchFrames(8))
	if err != nil {
		t.Fatal(err)
	}
	// waitStamp waits until ICE has read a datagram whose stamp is newer
	// than since: the next one to arrive, the only traffic being ours.
	waitStamp := func(since time.Time, what string) time.Time {
		for {
			if at, _ := stamps.Received(); at.After(since) {
				return at
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s never arrived", what)
			case <-time.After(time.Millisecond):
			}
		}
	}
	before, _ := stamps.Received()
	if err := dc.Send(msg); err != nil { // its read waits for the test
		t.Fatal(err)
	}
	waitStamp(before, "the first message")
	sent := time.Now()
	if err := dc.Send(msg); err != nil {
		t.Fatal(err)
	}
	arrived := waitStamp(sent, "the second message")
	let := time.Now()
	for i := range 2 {
		select {
		case r := <-reads:
			if i == 1 && (!r.stamped || !r.stamp.Equal(arrived) || r.held < let.Sub(arrived)) {
				t.Fatalf("the late message held %v (stamped %v, %v): want the wait since its datagram's arrival, %v, at least the %v to when the reader was let go", r.held, r.stamped, r.stamp, arrived, let.Sub(arrived))
			}
		case <-ctx.Done():
			t.Fatalf("message %d not read", i)
		}
	}
}

// Peer connections that share one UDP port are not stamped: one socket
// serves every peer, and a stamp would have to be kept per address.
func TestSharedPortIsNotStamped(t *testing.T) {
	free, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := free.LocalAddr().(*net.UDPAddr).Port
	free.Close()
	api, err := newWebRTCAPI(webrtcNet{udpPort: port}, true, testlog.New(t))
	if err != nil {
		t.Skipf("UDP port %d taken again meanwhile: %v", port, err)
	}
	defer api.closeMux()
	pc, stamps, err := api.newPeerConnection()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if stamps != nil {
		t.Fatal("a peer connection on the shared port has a group of stamps")
	}
}

// connectedPeer connects a client of clientAPI to a peer connection of
// node over an open xr channel, whose messages the node leaves unread;
// both close when the test ends.
func connectedPeer(ctx context.Context, t *testing.T, node *webrtcAPI, clientAPI *webrtc.API) (*webrtc.PeerConnection, *webrtc.DataChannel) {
	t.Helper()
	realm, _, err := node.newPeerConnection()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { realm.Close() })
	client, err := clientAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	realm.OnDataChannel(func(dc *webrtc.DataChannel) {})
	return realm, openXRChannel(ctx, t, client, realm)
}

// The node is an ICE-lite agent: its answer says so, it answers the
// client's connectivity checks and sends none of its own, and the peer
// connection stays up on the client's checks and frames past the
// node's disconnected timeout. The same node as a full agent (the
// control) sends its own checks, which is what the counts tell apart.
func TestTheNodeIsAnICELiteAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api, err := newWebRTCAPI(webrtcNet{}, true, testlog.New(t))
	if err != nil {
		t.Fatal(err)
	}
	full := *api
	full.se.SetLite(false)
	// The client checks every 500 ms, the node's own checks (as a full
	// agent) would come every 2 s: 6 s spans both, and the node's 5 s
	// disconnected timeout.
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(5*time.Second, 25*time.Second, 500*time.Millisecond)
	clientAPI := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	msg, err := vr.AppendMessage(nil, benchFrames(8))
	if err != nil {
		t.Fatal(err)
	}
	checks := func(node *webrtcAPI) (sent, received uint64, answer string, state webrtc.ICEConnectionState) {
		realm, dc := connectedPeer(ctx, t, node, clientAPI)
		for range 60 {
			if err := dc.Send(msg); err != nil {
				t.Fatal(err)
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
		for _, s := range realm.GetStats() {
			if p, ok := s.(webrtc.ICECandidatePairStats); ok {
				sent += p.RequestsSent
				received += p.RequestsReceived
			}
		}
		return sent, received, realm.LocalDescription().SDP, realm.ICEConnectionState()
	}

	sent, received, answer, state := checks(api)
	if !strings.Contains(answer, "a=ice-lite") {
		t.Errorf("the node's answer does not declare ICE lite:\n%s", answer)
	}
	if sent != 0 {
		t.Errorf("the node sent %d connectivity checks: an ICE-lite agent sends none", sent)
	}
	if received < 4 {
		t.Errorf("the node answered %d of the client's connectivity checks in 6 s of checks every 500 ms", received)
	}
	if state != webrtc.ICEConnectionStateConnected && state != webrtc.ICEConnectionStateCompleted {
		t.Errorf("the peer connection is %s after 6 s of the client's checks and frames, want connected", state)
	}

	if sent, _, answer, _ := checks(&full); sent == 0 || strings.Contains(answer, "a=ice-lite") {
		t.Errorf("control: the node as a full agent sent %d connectivity checks in 6 s (ice-lite in its answer: %t); the counts cannot tell the two apart",
			sent, strings.Contains(answer, "a=ice-lite"))
	}
}

// A node given its public address behind a 1:1 NAT offers it as a host
// candidate, beside its own addresses, which still connect a client on
// its network (here the loopback one). Behind the NAT, what the client
// sends to the public address arrives at the same port of a private one:
// each public candidate's port is one the node listens on.
// 192.0.2.10 is a documentation address nothing answers.
func TestThePublicIPIsOfferedBesideTheNodesOwn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	public := netip.MustParseAddr("192.0.2.10")
	api, err := newWebRTCAPI(webrtcNet{publicIPs: []netip.Addr{public}}, true, testlog.New(t))
	if err != nil {
		t.Fatal(err)
	}
	realm, _ := connectedPeer(ctx, t, api, lean(true))
	sdp := realm.LocalDescription().SDP
	var own, publicPorts []int
	for line := range strings.SplitSeq(sdp, "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "a=candidate:"))
		if len(f) < 8 || !strings.EqualFold(f[2], "udp") || f[7] != "host" {
			continue
		}
		addr, err := netip.ParseAddr(f[4])
		port, perr := strconv.Atoi(f[5])
		switch {
		case err != nil || perr != nil:
			t.Fatalf("candidate %q: address or port does not parse", line)
		case addr == public:
			publicPorts = append(publicPorts, port)
		default:
			own = append(own, port)
		}
	}
	if len(publicPorts) == 0 || len(own) == 0 {
		t.Fatalf("the answer offers %d candidates at %s and %d of the node's own, want both:\n%s", len(publicPorts), public, len(own), sdp)
	}
	for _, port := range publicPorts {
		// Taking the port on every address fails while the node holds it
		// on one of them.
		if c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: port}); err == nil {
			c.Close()
			t.Errorf("%s is offered at port %d, on which the node does not listen", public, port)
		}
	}
}

func TestPublicIPProblems(t *testing.T) {
	for _, tc := range []struct {
		ips  []string
		want string // "" for no problem
	}{
		{nil, ""},
		{[]string{"203.0.113.7"}, ""},
		{[]string{"203.0.113.7", "2001:db8::7"}, ""},
		{[]string{"::ffff:203.0.113.7", "2001:db8::7"}, ""},
		{[]string{"203.0.113.7", "203.0.113.8"}, "at most one of each"},
		{[]string{"2001:db8::7", "2001:db8::8"}, "at most one of each"},
		{[]string{"0.0.0.0"}, "not unspecified"},
		{[]string{"224.0.0.1"}, "not unspecified, multicast"},
		{[]string{"fe80::1"}, "link-local"},
	} {
		var ips []netip.Addr
		for _, s := range tc.ips {
			ips = append(ips, netip.MustParseAddr(s))
		}
		got := strings.Join(PublicIPProblems(ips), "; ")
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("PublicIPProblems(%v) = %q, want %q", tc.ips, got, tc.want)
		}
	}
	if got := PublicIPProblems([]netip.Addr{{}}); len(got) != 1 {
		t.Errorf("PublicIPProblems(zero address) = %q, want one problem", got)
	}
}
