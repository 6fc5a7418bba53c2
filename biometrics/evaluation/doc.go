// Package evaluation measures the verifier the way it will be used, and
// keeps the measurement honest: people enrol on their first session and are
// probed with a session from another day; impostors are every other
// person's probes; and everything fitted from data (the background model,
// the normalization cohort) is fitted leave-people-out, never on the
// claimed or the probing person and never on a probe session.
package evaluation
