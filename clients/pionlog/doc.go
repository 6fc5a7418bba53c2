// Package pionlog sends the logs of pion (the WebRTC stack) to a log/slog
// logger, formatting a line only when its level is enabled: pion traces
// per packet. The realm's XR transport and the VR client SDK both speak
// WebRTC through pion, so both use it; it knows nothing of either.
package pionlog
