package twin

// Subjects live under the realm's store prefix, so one NATS account can
// serve several realms and the embedded server's permissions can confine a
// gateway to its own twin with three patterns.

// CommandSubject is where the realm sends grants for one actuator, as NATS
// requests: <prefix>.twin.<twin>.cmd.<actuator>.
func CommandSubject(prefix, twinID, actuatorID string) string {
	return prefix + ".twin." + twinID + ".cmd." + actuatorID
}

// CommandSubjects matches every command subject of a twin.
func CommandSubjects(prefix, twinID string) string { return prefix + ".twin." + twinID + ".cmd.>" }

// StateSubject is where a gateway publishes signed telemetry of one
// actuator: <prefix>.twin.<twin>.state.<actuator>.
func StateSubject(prefix, twinID, actuatorID string) string {
	return prefix + ".twin." + twinID + ".state." + actuatorID
}

// StateSubjects matches every state subject of a twin.
func StateSubjects(prefix, twinID string) string { return prefix + ".twin." + twinID + ".state.>" }

// AllStateSubjects matches the state subjects of every twin.
func AllStateSubjects(prefix string) string { return prefix + ".twin.*.state.>" }

// RevocationSubject carries the realm's signed revocation notices and
// heartbeats.
func RevocationSubject(prefix string) string { return prefix + ".revocations" }

// KeySubject carries signed rotations of the realm's grant key.
func KeySubject(prefix string) string { return prefix + ".twin.keys" }
