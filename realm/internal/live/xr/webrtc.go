package xr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/clients/pionlog"
	"github.com/zerorealm/zerorealm/internal/netstamp"
)

// xrDataChannel is the label of the one data channel frames are read from.
const xrDataChannel = "xr"

// xrGatherTimeout bounds how long the realm gathers its own candidates
// before it answers. It gathers host candidates (and the configured
// address), which takes milliseconds, so its answer carries them all and
// the realm never trickles.
const xrGatherTimeout = 5 * time.Second

// xrMaxReadMessage is the longest data channel message the realm reads
// at all, only to refuse it (a frame message is at most
// biometrics.MaxMessageSize); a longer one ends the channel. pion's own
// reader would grow its buffer up to the answer's a=max-message-size
// (pion's default, 1 GiB) and keep it for the channel's life.
const xrMaxReadMessage = 1 << 20

// newWebRTCAPI builds the node's pion API. Loopback candidates are
// included, so a client on the realm's own machine (a load generator, a
// test) connects; mDNS is off, because the realm has no address to hide and
// each responder would hold a multicast socket. With a UDP port configured,
// every peer connection shares that one socket.
//
// Data channels are detached: the realm reads each one with its own loop
// into one buffer the size of the largest valid message, where pion's
// reader would hold 64 KiB and copy every message into a new slice for
// its callback. The API has no codecs and no interceptors: without media
// pion's default RTCP interceptors only cost each peer connection four
// goroutines, one of them woken ten times a second. SCTP skips its
// CRC32c when the client offers the same (RFC 9653; the DTLS record's
// authentication tag already covers every byte).
//
// The node is an ICE-lite agent (RFC 8445, section 2.5), as media servers
// reachable at their own addresses are: it offers host candidates only,
// answers the client's connectivity and consent checks, and sends none of
// its own. A full agent's checks every 2 s on each peer connection, and
// their answers, were about 3.5 % of a node's CPU with 500 WebRTC streams
// among 2,500; the client's checks and frames already show the node its
// peer is there, and a peer silent for the disconnected and failed
// timeouts is dropped as before.
//
// A node behind a 1:1 NAT is given its public addresses: for each of
// its own addresses of their family, pion listens on one more socket
// there and offers it as a host candidate at the public address and that
// socket's port, which a 1:1 NAT forwards unchanged. The node's own
// candidates stay, for clients on its network (and the loopback ones for
// local clients).
//
// With stampUDP and no shared port, each peer connection's UDP sockets
// record the kernel's receive stamps (stampingNet).
func newWebRTCAPI(network webrtcNet, stampUDP bool, log *slog.Logger) (*webrtcAPI, error) {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.DetachDataChannels()
	se.LoggerFactory = pionlog.Factory{Log: log.With("component", "webrtc")} // pion's warnings at info: they are routine ICE events
	a := &webrtcAPI{closeMux: func() error { return nil }}
	if len(network.publicIPs) > 0 {
		external := make([]string, len(network.publicIPs))
		for i, ip := range network.publicIPs {
			external[i] = ip.Unmap().String()
		}
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: external, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteAppend,
		}); err != nil {
			return nil, fmt.Errorf("realm: WebRTC public IPs %v: %w", external, err)
		}
	}
	if udpPort := network.udpPort; udpPort > 0 {
		mux, err := ice.NewMultiUDPMuxFromPort(udpPort, ice.UDPMuxFromPortWithLoopback(),
			ice.UDPMuxFromPortWithLogger(pionlog.Factory{Log: log}.NewLogger("udpmux")))
		if err != nil {
			return nil, fmt.Errorf("realm: WebRTC UDP port %d: %w", udpPort, err)
		}
		se.SetICEUDPMux(mux)
		a.closeMux = mux.Close
		// One socket serves every peer: a stamp would have to be kept per
		// remote address, for any address that sends a datagram, and the
		// stream's frames are dated by their read instead.
		stampUDP = false
	}
	se.EnableSCTPZeroChecksum(true)
	se.SetLite(true)
	a.se = se
	if !stampUDP || !netstamp.UDPStamps {
		a.shared = a.build(se)
	}
	return a, nil
}

// webrtcNet is where the node's peer connections are reached.
type webrtcNet struct {
	udpPort   int          // the one UDP port every peer connection shares; 0: each its own
	publicIPs []netip.Addr // offered beside the node's own addresses (Config.PublicIPs)
}

// webrtcAPI makes the node's peer connections: all from one pion API, or
// each from an API of its own whose network stamps its sockets.
type webrtcAPI struct {
	se       webrtc.SettingEngine
	shared   *webrtc.API // nil when each peer connection stamps its sockets
	closeMux func() error
}

func (a *webrtcAPI) build(se webrtc.SettingEngine) *webrtc.API {
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
}

// newPeerConnection returns a new peer connection and the group of its
// UDP sockets, nil when they are not stamped.
func (a *webrtcAPI) newPeerConnection() (*webrtc.PeerConnection, *netstamp.UDPGroup, error) {
	if a.shared != nil {
		pc, err := a.shared.NewPeerConnection(webrtc.Configuration{})
		return pc, nil, err
	}
	// pion makes the same standard network for each ICE agent that is
	// given none: its list of interfaces is read afresh for each.
	std, err := stdnet.NewNet()
	if err != nil {
		return nil, nil, err
	}
	stamps := new(netstamp.UDPGroup)
	se := a.se
	se.SetNet(stampingNet{Net: std, stamps: stamps})
	pc, err := a.build(se).NewPeerConnection(webrtc.Configuration{})
	return pc, stamps, err
}

// stampingNet is pion's standard network whose UDP sockets, the ICE
// candidates of one peer connection, record the kernel's receive stamps
// into stamps. They still offer pion an allocation-free read and write
// (ice.AddrPortReaderWriter, webrtc_linux_test.go); what they do not
// give it is each datagram's ECN bits, which pion v4.2.26's DTLS, SCTP
// and data channels never read (they are for media's congestion control).
type stampingNet struct {
	*stdnet.Net
	stamps *netstamp.UDPGroup
}

func (n stampingNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return n.stamp(c)
}

func (n stampingNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return n.stamp(c)
}

// stamp adds c to the group. A socket it cannot stamp is refused rather
// than served: its datagrams would go unseen by the group, and a message
// of them would be dated by another socket's older stamp.
func (n stampingNet) stamp(c net.PacketConn) (transport.UDPConn, error) {
	udp, ok := c.(*net.UDPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("realm: WebRTC socket %T is not a UDP socket, and its receive stamps cannot be read", c)
	}
	sc, ok := n.stamps.Wrap(udp).(transport.UDPConn)
	if !ok {
		c.Close()
		return nil, errors.New("realm: a stamped WebRTC socket lacks a UDP socket's methods")
	}
	return sc, nil
}

// peerConn is the WebRTC peer connection of one live connection.
type peerConn struct {
	pc        *webrtc.PeerConnection
	closeOnce sync.Once
	onClose   func()
}

func (p *peerConn) close() {
	p.closeOnce.Do(func() {
		_ = p.pc.Close()
		if p.onClose != nil {
			p.onClose()
		}
	})
}

// ClosePeer closes the connection's peer connection, if it has one: a
// revoked session's data channel must stop before the close frame has even
// been written.
func (l *Link) ClosePeer() { l.swapPeer(nil) }

// swapPeer makes p the connection's peer connection (nil for none) and
// closes the one it replaces.
func (l *Link) swapPeer(p *peerConn) {
	l.peerMu.Lock()
	old := l.peer
	l.peer = p
	l.peerMu.Unlock()
	if old != nil {
		old.close()
	}
}

var errWebRTC = errors.New("webrtc")

// Offer answers a client's offer with a new peer connection that
// reads frames from the client's "xr" data channel. A connection has one
// peer connection: a new offer replaces the previous one. An offer that
// would open a new stream on a node that opens none is refused with a
// *BusyError (ErrNodeBusy), and no peer connection is made.
func (l *Link) Offer(sdp string) error {
	s, c := l.s, l.c
	if c.Closed() {
		return nil
	}
	// A connection whose session streams here already may move its stream
	// to a data channel; any other offer asks for a new stream.
	if l.x.Load() == nil && !s.reg.streaming(c.Session().ID) {
		if busy := s.admit.check(s.deps.Clock.Now()); busy != nil {
			s.m.refused.WithLabelValues(busy.Cause).Inc()
			return busy
		}
	}
	pc, stamps, err := s.api.newPeerConnection()
	if err != nil {
		s.log.Error("new peer connection", "err", err)
		return fmt.Errorf("%w: the realm could not create a peer connection", errWebRTC)
	}
	p := &peerConn{pc: pc}
	s.peerOpened()
	p.onClose = s.peerClosed

	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != xrDataChannel {
			s.log.Debug("data channel refused", "session", c.Session().ID, "label", dc.Label())
			_ = dc.Close()
			return
		}
		// The open handler runs on a goroutine of its own, which reads the
		// channel until it ends: no second goroutine per channel.
		dc.OnOpen(func() {
			ch, err := dc.Detach()
			if err != nil {
				s.channelEnded(slog.LevelError, "detach data channel", l, err)
				_ = dc.Close()
				return
			}
			s.readDataChannel(l, ch, stamps)
		})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			l.peerMu.Lock()
			if l.peer == p {
				l.peer = nil
			}
			l.peerMu.Unlock()
			go p.close() // not from pion's own callback goroutine
		}
	})

	fail := func(what string, err error) error {
		p.close()
		return fmt.Errorf("%w: %s: %v", errWebRTC, what, err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return fail("the offer is not a usable session description", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail("no answer to this offer", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail("answer", err)
	}
	ctx, cancel := context.WithTimeout(c.Context(), xrGatherTimeout)
	defer cancel()
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail("gathering the realm's candidates", ctx.Err())
	}

	l.swapPeer(p)
	// A revocation may have closed the connection meanwhile; its closePeer
	// ran before this peer was attached, so close it here.
	if c.Closed() {
		l.ClosePeer()
		return nil
	}
	c.Push(encodeMessage(message{Type: "webrtc.answer", SDP: pc.LocalDescription().SDP}))
	return nil
}

// readDataChannel feeds the "xr" channel's messages to the session's
// stream until the channel ends. With stamps, the peer connection's
// sockets, each message is dated by the newest datagram they had read
// when it was: no earlier than the message's own datagrams arrived, as
// pion reads them in order before it can hand the message on, and no
// later than its read.
func (s *Service) readDataChannel(l *Link, ch datachannel.ReadWriteCloser, stamps *netstamp.UDPGroup) {
	defer ch.Close()
	err := readDatedMessages(ch, stamps, func(msg []byte, isString bool, held time.Duration, stamped bool) {
		if isString {
			s.m.message(transportWebRTC, "not-binary")
			return
		}
		l.c.Used()
		s.ingestFrames(l, transportWebRTC, msg, held, stamped)
	})
	if errors.Is(err, errMessageTooLarge) {
		s.channelEnded(slog.LevelDebug, "data channel closed", l, err)
	}
}

// channelEnded logs why a link's data channel ended. It is a function of
// its own so that the frames of the channel's reader, beneath every
// window the stream scores, hold neither the call's arguments nor the
// session it reads them from (216 bytes).
//
//go:noinline
func (s *Service) channelEnded(level slog.Level, msg string, l *Link, err error) {
	s.log.Log(context.Background(), level, msg, "session", l.c.Session().ID, "err", err)
}

// readDatedMessages is readMessages with each message's wait: how long
// before its read the newest datagram of stamps arrived, and false when
// there is no stamp (nil stamps among them).
func readDatedMessages(ch datachannel.Reader, stamps *netstamp.UDPGroup, handle func(msg []byte, isString bool, held time.Duration, stamped bool)) error {
	return readMessages(ch, func(msg []byte, isString bool) {
		held, stamped := stamps.Held(time.Now())
		handle(msg, isString, held, stamped)
	})
}

var errMessageTooLarge = errors.New("data channel message longer than the realm reads")

// readMessages reads a detached channel's messages until it ends, each
// into the same buffer, the size of the largest valid frame message:
// handle must keep nothing of msg. A longer message is read into a
// buffer of its own, doubled until it fits (pion's reader says only that
// a message did not fit, not its length), and handed on, to be refused
// as malformed as the WebSocket refuses it; one over xrMaxReadMessage
// ends the channel with errMessageTooLarge.
func readMessages(ch datachannel.Reader, handle func(msg []byte, isString bool)) error {
	buf := make([]byte, biometrics.MaxMessageSize)
	for {
		n, isString, err := ch.ReadDataChannel(buf)
		msg := buf
		for errors.Is(err, io.ErrShortBuffer) && len(msg) < xrMaxReadMessage {
			msg = make([]byte, min(2*len(msg), xrMaxReadMessage))
			n, isString, err = ch.ReadDataChannel(msg)
		}
		if errors.Is(err, io.ErrShortBuffer) {
			return fmt.Errorf("%w: over %d bytes", errMessageTooLarge, xrMaxReadMessage)
		}
		if err != nil {
			return err // the channel or its peer connection closed
		}
		handle(msg[:n], isString)
	}
}

// ICECandidate is RTCIceCandidateInit, as browsers' toJSON() gives it.
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Candidate adds a candidate the client trickled after its offer; nil is
// the end of its candidates.
func (l *Link) Candidate(cand *ICECandidate) error {
	if cand == nil {
		return nil // end of candidates: nothing to do, ICE keeps checking what it has
	}
	l.peerMu.Lock()
	p := l.peer
	l.peerMu.Unlock()
	if p == nil {
		return fmt.Errorf("%w: webrtc.candidate before webrtc.offer: send the offer first", errWebRTC)
	}
	init := webrtc.ICECandidateInit{Candidate: cand.Candidate, SDPMid: cand.SDPMid, SDPMLineIndex: cand.SDPMLineIndex, UsernameFragment: cand.UsernameFragment}
	if err := p.pc.AddICECandidate(init); err != nil {
		return fmt.Errorf("%w: candidate refused: %v", errWebRTC, err)
	}
	return nil
}
