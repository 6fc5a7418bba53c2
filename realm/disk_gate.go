package realm

// diskGate is the store's write gate: on the embedded store, the disk
// guard's refusal (free space under MinFreeDisk, or JetStream broken by a
// failed write and not yet restarted); with NATS, whose servers own their
// disks and answer for them, none.
//
// It guards what the node serves, once it serves: the few writes of
// start-up (the record key's check, the node's entry, the audit of the
// start) go ahead, so a node started on a nearly full disk comes up not
// ready, and turns ready when space is freed, rather than exit.
func (r *Realm) diskGate() func() error {
	if r.embedded == nil {
		return nil
	}
	return func() error {
		if !r.ready.Load() {
			return nil
		}
		return r.embedded.WriteRefusal()
	}
}
