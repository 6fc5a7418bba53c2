// Package gatewaytest holds actuator drivers for the tests of what sits
// around a twin gateway: a driver that takes as long as its test says, so
// that a test can hold a command in the gateway while it retries it from
// the realm, without asserting any time. Only tests import it.
package gatewaytest
