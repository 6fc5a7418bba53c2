package biometrics

// Test-only access for the external test package.
var KeyOf = keyOf
