package store

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Subjects returns the relative subjects of the stream that match the
// relative filter (wildcards allowed) and hold at least one message, with
// their message counts. It asks the server for the stream's subject state,
// so it costs one request per call and scales with the number of subjects.
func (st *Stream) Subjects(ctx context.Context, filter string) (map[string]uint64, error) {
	if err := validateFilter(filter); err != nil {
		return nil, err
	}
	ctx, cancel := st.store.withTimeout(ctx)
	defer cancel()
	info, err := st.js.Info(ctx, jetstream.WithSubjectFilter(st.store.subject(filter)))
	if err != nil {
		return nil, fmt.Errorf("store: subjects of %s: %w", st.name, classify(err))
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		out[st.store.relative(subj)] = n
	}
	return out, nil
}
