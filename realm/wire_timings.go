package realm

// The histograms of domain events (realm/internal/timings): each part is
// handed the one method it calls in its Deps (wire_identity.go,
// wire_twins.go, wire_market.go); the scenes' policy sets are observed
// here, once the catalog is loaded.

// timePolicies has every scene's policy set report each decision's
// duration.
func (r *Realm) timePolicies() {
	for _, sc := range r.catalog.Scenes() {
		sc.Policies.Observe(r.timings.Decision)
	}
}
