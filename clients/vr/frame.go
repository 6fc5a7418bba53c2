package vr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// FormatVersion is the first byte of every frame message this SDK writes.
const FormatVersion = 1

// MaxFramesPerMessage is the most frames one message may carry; the realm
// refuses a message with more as a whole.
const MaxFramesPerMessage = 32

// Wire layout sizes (little-endian throughout), from clients/PROTOCOL.md.
const (
	headerSize    = 4                      // version, frame count, two reserved zero bytes
	poseSize      = 7 * 4                  // position xyz, rotation xyzw as float32
	frameBaseSize = 8 + 4 + 4 + 3*poseSize // time_us, seq, flags, head, left, right
	gazeSize      = 4 * 4
	heartSize     = 4
	// MaxMessageSize is the size of the largest message: MaxFramesPerMessage
	// frames, each with gaze and heart rate.
	MaxMessageSize = headerSize + MaxFramesPerMessage*(frameBaseSize+gazeSize+heartSize)
)

const (
	flagHeadTracked  = 1 << 0
	flagLeftTracked  = 1 << 1
	flagRightTracked = 1 << 2
	flagGaze         = 1 << 3
	flagHeartRate    = 1 << 4
)

// ErrTooManyFrames is returned for a batch larger than MaxFramesPerMessage.
var ErrTooManyFrames = errors.New("vr: too many frames for one message")

// Pose is one tracked device in OpenXR's right-handed space: +X right, +Y
// up, -Z forward, metres; Rot is a unit quaternion x, y, z, w.
type Pose struct {
	Pos     [3]float32
	Rot     [4]float32
	Tracked bool
}

// Gaze is the combined eye-gaze ray in the head's frame and the mean pupil
// diameter in millimetres.
type Gaze struct {
	Dir     [3]float32
	PupilMM float32
}

// Frame is one sample of the headset and both controllers. TimeUS is the
// device clock in microseconds and must increase strictly within a stream;
// Seq is the sender's counter, which the realm echoes in score messages.
type Frame struct {
	TimeUS    uint64
	Seq       uint32
	Head      Pose
	Left      Pose
	Right     Pose
	Gaze      *Gaze   // nil without an eye tracker
	HeartRate float32 // beats per minute, 0 when absent
}

// AppendMessage appends the wire form of frames, one message, to dst.
// Values are written as given: the realm, not the SDK, judges them, so a
// client's bug shows in the realm's reject counters.
func AppendMessage(dst []byte, frames []Frame) ([]byte, error) {
	if len(frames) > MaxFramesPerMessage {
		return dst, fmt.Errorf("%w: %d (max %d)", ErrTooManyFrames, len(frames), MaxFramesPerMessage)
	}
	dst = append(dst, FormatVersion, byte(len(frames)), 0, 0)
	for i := range frames {
		f := &frames[i]
		var flags uint32
		for bit, p := range [3]*Pose{&f.Head, &f.Left, &f.Right} {
			if p.Tracked {
				flags |= 1 << bit
			}
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
			dst = appendFloats(dst, p.Pos[:]...)
			dst = appendFloats(dst, p.Rot[:]...)
		}
		if f.Gaze != nil {
			dst = appendFloats(dst, f.Gaze.Dir[:]...)
			dst = appendFloats(dst, f.Gaze.PupilMM)
		}
		if f.HeartRate != 0 {
			dst = appendFloats(dst, f.HeartRate)
		}
	}
	return dst, nil
}

func appendFloats(dst []byte, vs ...float32) []byte {
	for _, v := range vs {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst
}
