package biometrics

import "math"

type vec3 [3]float64

func (a vec3) sub(b vec3) vec3      { return vec3{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
func (a vec3) dot(b vec3) float64   { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
func (a vec3) norm() float64        { return math.Sqrt(a.dot(a)) }
func (a vec3) scale(s float64) vec3 { return vec3{a[0] * s, a[1] * s, a[2] * s} }

func cross(a, b vec3) vec3 {
	return vec3{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

func posOf(p *Pose) vec3 { return vec3{float64(p.Pos[0]), float64(p.Pos[1]), float64(p.Pos[2])} }

// rotate applies the unit quaternion q (x, y, z, w) to v.
func rotate(q [4]float32, v vec3) vec3 {
	u := vec3{float64(q[0]), float64(q[1]), float64(q[2])}
	w := float64(q[3])
	t := cross(u, v).scale(2)
	r := cross(u, t)
	return vec3{v[0] + w*t[0] + r[0], v[1] + w*t[1] + r[1], v[2] + w*t[2] + r[2]}
}

var (
	axisForward = vec3{0, 0, -1} // OpenXR: -Z is forward
	axisUp      = vec3{0, 1, 0}
	axisRight   = vec3{1, 0, 0}
)

// nlerp interpolates rotations; between two samples a few milliseconds
// apart it is as good as slerp and far cheaper.
func nlerp(a, b [4]float32, t float32) [4]float32 {
	d := a[0]*b[0] + a[1]*b[1] + a[2]*b[2] + a[3]*b[3]
	s := float32(1)
	if d < 0 {
		s = -1 // take the short way round: q and -q are the same rotation
	}
	var r [4]float32
	var n float32
	for i := range r {
		r[i] = a[i]*(1-t) + s*b[i]*t
		n += r[i] * r[i]
	}
	if n == 0 {
		return a
	}
	inv := 1 / float32(math.Sqrt(float64(n)))
	for i := range r {
		r[i] *= inv
	}
	return r
}

func lerpPose(a, b *Pose, t float32) Pose {
	var p Pose
	for i := range p.Pos {
		p.Pos[i] = a.Pos[i] + (b.Pos[i]-a.Pos[i])*t
	}
	p.Rot = nlerp(a.Rot, b.Rot, t)
	p.Tracked = a.Tracked && b.Tracked
	return p
}
