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

// basis holds the images of the three axes under a rotation: the columns
// of its matrix.
type basis [3]vec3

// basisOf is the rotation of the quaternion q (x, y, z, w) as the images
// of the axes, by the algebra of rotating a vector by a quaternion
// (v + 2w·u×v + 2u(u·v) − 2v|u|², written out per axis), so that every
// vector a sample needs is a column or three dot products instead of a
// rotation each. postureOf has the same arithmetic on scalars, which Go
// keeps in registers; this vector form is the one to read, and the one
// the tests hold against a textbook rotation.
func basisOf(q [4]float32) basis {
	x, y, z, w := float64(q[0]), float64(q[1]), float64(q[2]), float64(q[3])
	return basis{
		{1 - 2*(y*y+z*z), 2*w*z + 2*y*x, -2*w*y + 2*z*x},
		{-2*w*z + 2*x*y, 1 - 2*(x*x+z*z), 2*w*x + 2*z*y},
		{2*w*y + 2*x*z, -2*w*x + 2*y*z, 1 - 2*(x*x+y*y)},
	}
}

// forward, up and right are where the rotation takes the OpenXR axes.
func (b *basis) forward() vec3 { return b[2].scale(-1) }
func (b *basis) up() vec3      { return b[1] }
func (b *basis) right() vec3   { return b[0] }

// inverse applies the inverse rotation to v (the transpose, for a unit
// quaternion: rotate with the conjugate).
func (b *basis) inverse(v vec3) vec3 { return vec3{b[0].dot(v), b[1].dot(v), b[2].dot(v)} }

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
