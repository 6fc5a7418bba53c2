// Package browsertest starts headless Chromium for tests, with a virtual
// WebAuthn authenticator, so passkey ceremonies run for real: the browser
// builds the credentials and the realm verifies them.
//
// Only tests import it. Without Chromium on the machine the tests that need
// it skip, unless ZR_REQUIRE_BROWSER is set (CI sets it), in which case they
// fail: CI must never pass by skipping them.
package browsertest
