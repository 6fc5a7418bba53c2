package vr

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/zerorealm/zerorealm/clients/pionlog"
)

// dataChannelLabel is the one data channel the realm reads frames from.
const dataChannelLabel = "xr"

// newWebRTCAPI builds the pion API of one client. Loopback candidates are
// included so that a client on the realm's own machine connects; mDNS is
// off because hiding host addresses behind .local names only helps web
// pages, and each mDNS responder would hold a multicast socket. The API
// has no codecs and no interceptors: the client sends no media, and
// pion's default RTCP interceptors would only cost it four goroutines,
// one of them woken ten times a second. SCTP offers to skip its CRC32c
// (RFC 9653), which the realm accepts: the DTLS record's authentication
// tag already covers every byte.
func newWebRTCAPI(log *slog.Logger) *webrtc.API {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.EnableSCTPZeroChecksum(true)
	se.LoggerFactory = pionlog.Factory{Log: log, Warn: slog.LevelWarn}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
}

// openDataChannel offers the "xr" channel with every local candidate in
// the offer (no trickling needed: host candidates are gathered at once),
// applies the realm's answer and waits until the channel is open.
func (c *Client) openDataChannel(ctx context.Context) error {
	cfg := webrtc.Configuration{}
	if len(c.cfg.ICEServers) > 0 {
		cfg.ICEServers = []webrtc.ICEServer{{URLs: c.cfg.ICEServers}}
	}
	pc, err := newWebRTCAPI(c.log).NewPeerConnection(cfg)
	if err != nil {
		return fmt.Errorf("vr: peer connection: %w", err)
	}
	c.pc = pc
	ordered := false
	var retransmits uint16
	dc, err := pc.CreateDataChannel(dataChannelLabel, &webrtc.DataChannelInit{Ordered: &ordered, MaxRetransmits: &retransmits})
	if err != nil {
		return fmt.Errorf("vr: data channel: %w", err)
	}
	c.dc = dc
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	failed := make(chan struct{})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed {
			select {
			case <-failed:
			default:
				close(failed)
			}
		}
	})

	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("vr: offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("vr: local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("vr: gathering ICE candidates: %w", ctx.Err())
	}
	if err := c.writeJSON(map[string]string{"type": "webrtc.offer", "sdp": pc.LocalDescription().SDP}); err != nil {
		return fmt.Errorf("vr: send offer: %w", err)
	}
	select {
	case sdp := <-c.answers:
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
			return fmt.Errorf("vr: realm's answer: %w", err)
		}
	case why := <-c.refusal:
		return fmt.Errorf("%w: WebRTC offer: %w", ErrRefused, why)
	case <-c.done:
		return fmt.Errorf("vr: waiting for the answer: %w", c.Err())
	case <-ctx.Done():
		return fmt.Errorf("vr: waiting for the answer: %w", ctx.Err())
	}
	select {
	case <-opened:
		return nil
	case <-failed:
		return fmt.Errorf("vr: WebRTC connection failed (no ICE candidate pair works; try the %q transport)", WebSocket)
	case <-c.done:
		return fmt.Errorf("vr: waiting for the data channel: %w", c.Err())
	case <-ctx.Done():
		return fmt.Errorf("vr: waiting for the data channel: %w", ctx.Err())
	}
}
