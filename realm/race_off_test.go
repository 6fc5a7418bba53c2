//go:build !race

package realm

// raceDetector: this test binary was built with -race.
const raceDetector = false
