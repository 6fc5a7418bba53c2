package biometrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// FormatVersion is the version byte every frame message starts with. A
// message of another version is refused whole rather than half-read.
const FormatVersion = 1

// MaxFramesPerMessage bounds the work one message can ask of the decoder and
// keeps a message under a WebRTC data channel's safe size (32 full frames
// are 3,840 bytes).
const MaxFramesPerMessage = 32

// Sizes of the wire layout; clients/PROTOCOL.md is the reference.
const (
	messageHeaderSize = 4
	poseSize          = 7 * 4 // position xyz, rotation xyzw, float32 each
	frameBaseSize     = 8 + 4 + 4 + 3*poseSize
	gazeBlockSize     = 4 * 4
	heartBlockSize    = 4
	// MaxMessageSize is the largest valid message: a header and
	// MaxFramesPerMessage frames with every optional block.
	MaxMessageSize = messageHeaderSize + MaxFramesPerMessage*(frameBaseSize+gazeBlockSize+heartBlockSize)
)

// Flag bits of a frame; the others are reserved and must be zero so that a
// later version can give them a meaning without old decoders misreading it.
const (
	flagHeadTracked  = 1 << 0
	flagLeftTracked  = 1 << 1
	flagRightTracked = 1 << 2
	flagGaze         = 1 << 3
	flagHeartRate    = 1 << 4
	flagsKnown       = flagHeadTracked | flagLeftTracked | flagRightTracked | flagGaze | flagHeartRate
)

// Plausibility limits for a single frame. They are wide on purpose: they
// reject garbage and attacks on the numerics, not unusual people.
const (
	// MaxAbsPosition is the largest coordinate accepted, in metres: tracking
	// spaces are rooms, but some runtimes report world coordinates.
	MaxAbsPosition = 1000
	// quatNormTolerance allows float32 rounding and a client's cheap
	// renormalization, not a quaternion that was never normalized.
	quatNormTolerance = 0.02
	minPupilMM        = 1
	maxPupilMM        = 10
	minHeartRate      = 20
	maxHeartRate      = 250
)

// Reasons a frame is rejected. They are stable strings: metrics and tests
// count by them.
const (
	ReasonNonFinite     = "non-finite value"
	ReasonQuaternion    = "rotation is not a unit quaternion"
	ReasonPosition      = "position out of range"
	ReasonGaze          = "gaze out of range"
	ReasonHeartRate     = "heart rate out of range"
	ReasonReservedFlags = "reserved flag bits set"
	ReasonNonMonotonic  = "timestamp not after the previous frame"
	ReasonUntrackedHead = "head not tracked"
	ReasonJump          = "hand jumped: tracking glitch"
)

// Errors for a message that cannot be read at all. Callers test them with
// errors.Is; the wrapped error says where the message went wrong.
var (
	ErrShortMessage   = errors.New("biometrics: message too short")
	ErrVersion        = errors.New("biometrics: unsupported frame format version")
	ErrTooManyFrames  = errors.New("biometrics: too many frames in message")
	ErrLengthMismatch = errors.New("biometrics: message length does not match its frames")
)

// Pose is one tracked device in OpenXR's right-handed frame: +X right, +Y
// up, -Z forward, metres.
type Pose struct {
	Pos     [3]float32
	Rot     [4]float32 // x, y, z, w: a unit quaternion
	Tracked bool
}

// Gaze is the eye tracker's combined gaze ray in the head's frame and the
// mean pupil diameter.
type Gaze struct {
	Dir     [3]float32 // unit vector
	PupilMM float32
}

// Frame is one sample of the headset and both controllers.
type Frame struct {
	TimeUS    uint64 // device clock, microseconds, strictly increasing per stream
	Seq       uint32 // sender's counter; gaps show loss
	Head      Pose
	Left      Pose
	Right     Pose
	Gaze      *Gaze   // nil when the headset has no eye tracker
	HeartRate float32 // beats per minute; 0 = absent
}

// Reject names a frame of a message that was skipped and why.
type Reject struct {
	Index  int // position of the frame in its message
	Reason string
}

// Encode appends the wire form of frames to dst. It checks only what the
// layout needs (the count); values are sent as given, so that a client's
// bug is visible in the realm's reject counters rather than hidden here.
func Encode(dst []byte, frames []Frame) ([]byte, error) {
	if len(frames) > MaxFramesPerMessage {
		return dst, fmt.Errorf("encode %d frames: %w (max %d)", len(frames), ErrTooManyFrames, MaxFramesPerMessage)
	}
	dst = append(dst, FormatVersion, byte(len(frames)), 0, 0)
	for i := range frames {
		f := &frames[i]
		var flags uint32
		if f.Head.Tracked {
			flags |= flagHeadTracked
		}
		if f.Left.Tracked {
			flags |= flagLeftTracked
		}
		if f.Right.Tracked {
			flags |= flagRightTracked
		}
		if f.Gaze != nil {
			flags |= flagGaze
		}
		if f.HeartRate != 0 {
			flags |= flagHeartRate
		}
		dst = binary.LittleEndian.AppendUint64(dst, f.TimeUS)
		dst = binary.LittleEndian.AppendUint32(dst, f.Seq)
		dst = binary.LittleEndian.AppendUint32(dst, flags)
		for _, p := range [3]*Pose{&f.Head, &f.Left, &f.Right} {
			for _, v := range p.Pos {
				dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
			}
			for _, v := range p.Rot {
				dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
			}
		}
		if f.Gaze != nil {
			for _, v := range f.Gaze.Dir {
				dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
			}
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f.Gaze.PupilMM))
		}
		if f.HeartRate != 0 {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f.HeartRate))
		}
	}
	return dst, nil
}

// Decode appends the message's valid frames to dst. A message that cannot be
// read at all (short, wrong version, frame count over the limit, length
// mismatch) returns an error and appends nothing; individually bad frames
// are skipped and reported in rejects, so one glitch does not cost the
// frames around it.
func Decode(msg []byte, dst []Frame) (frames []Frame, rejects []Reject, err error) {
	if len(msg) < messageHeaderSize {
		return dst, nil, fmt.Errorf("decode: %d bytes: %w", len(msg), ErrShortMessage)
	}
	if msg[0] != FormatVersion {
		return dst, nil, fmt.Errorf("decode: version %d: %w", msg[0], ErrVersion)
	}
	count := int(msg[1])
	if count > MaxFramesPerMessage {
		return dst, nil, fmt.Errorf("decode: %d frames: %w (max %d)", count, ErrTooManyFrames, MaxFramesPerMessage)
	}
	if msg[2] != 0 || msg[3] != 0 {
		return dst, nil, fmt.Errorf("decode: reserved header bytes set: %w", ErrVersion)
	}
	// Walk the layout first so that a truncated or padded message changes
	// nothing in dst.
	off := messageHeaderSize
	gazes := 0
	for i := 0; i < count; i++ {
		if len(msg)-off < frameBaseSize {
			return dst, nil, fmt.Errorf("decode: frame %d truncated at byte %d: %w", i, off, ErrLengthMismatch)
		}
		flags := binary.LittleEndian.Uint32(msg[off+12:])
		if flags&flagGaze != 0 {
			gazes++
		}
		off += frameBaseSize + optionalSize(flags)
		if off > len(msg) {
			return dst, nil, fmt.Errorf("decode: frame %d truncated: %w", i, ErrLengthMismatch)
		}
	}
	if off != len(msg) {
		return dst, nil, fmt.Errorf("decode: %d trailing bytes: %w", len(msg)-off, ErrLengthMismatch)
	}

	// The message's gaze blocks share one allocation instead of one each:
	// a headset with eye tracking sends one per frame.
	var gazeBlocks []Gaze
	if gazes > 0 {
		gazeBlocks = make([]Gaze, gazes)
	}
	off = messageHeaderSize
	var lastTime uint64
	haveLast := false
	for i := 0; i < count; i++ {
		b := msg[off:]
		flags := binary.LittleEndian.Uint32(b[12:])
		off += frameBaseSize + optionalSize(flags)
		f := Frame{
			TimeUS: binary.LittleEndian.Uint64(b),
			Seq:    binary.LittleEndian.Uint32(b[8:]),
		}
		p := 16
		for j, pose := range [3]*Pose{&f.Head, &f.Left, &f.Right} {
			for k := range pose.Pos {
				pose.Pos[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[p:]))
				p += 4
			}
			for k := range pose.Rot {
				pose.Rot[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[p:]))
				p += 4
			}
			pose.Tracked = flags&(1<<j) != 0
		}
		if flags&flagGaze != 0 {
			g := &gazeBlocks[0]
			gazeBlocks = gazeBlocks[1:]
			for k := range g.Dir {
				g.Dir[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[p:]))
				p += 4
			}
			g.PupilMM = math.Float32frombits(binary.LittleEndian.Uint32(b[p:]))
			p += 4
			f.Gaze = g
		}
		if flags&flagHeartRate != 0 {
			f.HeartRate = math.Float32frombits(binary.LittleEndian.Uint32(b[p:]))
			if f.HeartRate == 0 {
				// Zero means absent in Frame; a present block must carry a rate.
				rejects = append(rejects, Reject{Index: i, Reason: ReasonHeartRate})
				continue
			}
		}
		if flags&^flagsKnown != 0 {
			rejects = append(rejects, Reject{Index: i, Reason: ReasonReservedFlags})
			continue
		}
		if reason := ValidateFrame(&f); reason != "" {
			rejects = append(rejects, Reject{Index: i, Reason: reason})
			continue
		}
		if haveLast && f.TimeUS <= lastTime {
			rejects = append(rejects, Reject{Index: i, Reason: ReasonNonMonotonic})
			continue
		}
		lastTime, haveLast = f.TimeUS, true
		dst = append(dst, f)
	}
	return dst, rejects, nil
}

func optionalSize(flags uint32) int {
	n := 0
	if flags&flagGaze != 0 {
		n += gazeBlockSize
	}
	if flags&flagHeartRate != 0 {
		n += heartBlockSize
	}
	return n
}

// ValidateFrame returns why a frame is not physically meaningful, or "" if
// it is. It looks at one frame only; timing across frames is the stream's
// business. Every pose must be finite, tracked or not, so that no NaN can
// reach the features; only a tracked pose must also be in range.
func ValidateFrame(f *Frame) string {
	for _, p := range [3]*Pose{&f.Head, &f.Left, &f.Right} {
		if reason := validatePose(p); reason != "" {
			return reason
		}
	}
	if g := f.Gaze; g != nil {
		if !finite(g.Dir[:]...) || !finite(g.PupilMM) {
			return ReasonNonFinite
		}
		n := norm3(g.Dir)
		if math.Abs(n-1) > quatNormTolerance {
			return ReasonGaze
		}
		if g.PupilMM != 0 && (g.PupilMM < minPupilMM || g.PupilMM > maxPupilMM) {
			return ReasonGaze
		}
	}
	if f.HeartRate != 0 {
		if !finite(f.HeartRate) {
			return ReasonNonFinite
		}
		if f.HeartRate < minHeartRate || f.HeartRate > maxHeartRate {
			return ReasonHeartRate
		}
	}
	return ""
}

func validatePose(p *Pose) string {
	if !finite(p.Pos[:]...) || !finite(p.Rot[:]...) {
		return ReasonNonFinite
	}
	if !p.Tracked {
		return ""
	}
	for _, v := range p.Pos {
		if v > MaxAbsPosition || v < -MaxAbsPosition {
			return ReasonPosition
		}
	}
	var n float64
	for _, v := range p.Rot {
		n += float64(v) * float64(v)
	}
	if math.Abs(math.Sqrt(n)-1) > quatNormTolerance {
		return ReasonQuaternion
	}
	return ""
}

func finite(vs ...float32) bool {
	for _, v := range vs {
		// An exponent of all ones is an infinity or a NaN.
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 {
			return false
		}
	}
	return true
}

func norm3(v [3]float32) float64 {
	x, y, z := float64(v[0]), float64(v[1]), float64(v[2])
	return math.Sqrt(x*x + y*y + z*z)
}
