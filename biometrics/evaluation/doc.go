// Package evaluation measures the verifier the way it will be used, and
// keeps the measurement honest: people enrol on their first session and are
// probed with a session from another day; impostors are every other
// person's probes; and everything fitted from data (the background model,
// the normalization cohort) is fitted leave-people-out, never on the
// claimed or the probing person and never on a probe session.
//
// Beside the error rates it streams motion as a realm does: synthetic
// changes of wearer, replays and hours of genuine motion (RunLive), the
// real recordings replayed (RunRecordingLiveness), and the real people's
// second days under their first days' templates, counting how often each
// would be asked for a step-up (RunRecordingStepUps).
package evaluation
