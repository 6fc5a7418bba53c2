// Package synth generates the motion of synthetic people for tests, demos
// and load generation: each person has a body (height, arm length, shoulder
// width, handedness), a way of moving (rest posture, how much and how fast
// they move, how their head follows their hands, their grip), a
// physiological tremor, and drifts a little from session to session, as
// people do from one day to the next. Everything is deterministic per seed.
//
// The motion is a plausible stand-in, not a model of any recorded person;
// nothing in it is fitted on real recordings.
package synth
