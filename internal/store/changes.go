package store

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Change is one report of a Changes feed: a key that changed, or one of
// the two signals Lost and Resumed.
type Change struct {
	// Key and Revision name a write or delete of a key (values are not
	// fetched: a cache only needs to know what to forget).
	Key      string
	Revision uint64
	// Deleted: the change deleted or purged the key.
	Deleted bool
	// Behind is how many later changes the server still had to deliver
	// when it sent this one: 0 means the feed had caught up.
	Behind uint64
	// Lost: from now on the feed may miss changes (the connection dropped,
	// or the server ended the watch) until it reports Resumed. A cache must
	// forget what it holds and stop serving.
	Lost bool
	// Resumed: the feed watches again, and reports every change stored
	// from now on. Changes stored while it was lost are not reported.
	Resumed bool
}

// changesRetry bounds how long a lost feed waits between attempts to
// watch again while the connection is up.
const changesRetry = 2 * time.Second

// Changes reports every write or delete of a key matching pattern that is
// stored after it returns, for caches that must forget what changed
// elsewhere. Unlike Watch it replays nothing and fetches no values. A
// bucket keeps History revisions per key, so a change already superseded
// on its key when the feed reaches it (a write deleted a moment later) is
// gone from the stream and reported only through its successor: the
// feed never misses a key's last change, which is what a cache needs.
//
// A cache cannot tell a quiet bucket from a feed that no longer hears it,
// so the feed says so itself: when the NATS connection drops, or the watch
// ends while ctx has not, it sends Lost at once; once connected and
// watching anew it sends Resumed. The channel closes when ctx ends or the
// connection closes for good; the caller keeps receiving until then.
func (b *Bucket) Changes(ctx context.Context, pattern string) (<-chan Change, error) {
	if err := validateKeyPattern(pattern); err != nil {
		return nil, err
	}
	nc := b.store.nc
	// Registered before the watch starts, so no drop goes unnoticed.
	status := nc.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	reconnects := nc.Stats().Reconnects
	w, err := b.watchChanges(ctx, pattern)
	if err != nil {
		nc.RemoveStatusListener(status)
		return nil, fmt.Errorf("store: watch changes of %s in %s: %w", pattern, b.name, classify(err))
	}
	out := make(chan Change, 64)
	go func() {
		defer close(out)
		defer nc.RemoveStatusListener(status)
		defer func() { w.stop() }()
		send := func(c Change) bool {
			select {
			case out <- c:
				return true
			case <-ctx.Done():
				return false
			}
		}
		var retry <-chan time.Time
		lose := func() bool {
			if w == nil {
				return true
			}
			w.stop()
			w = nil
			return send(Change{Lost: true})
		}
		resume := func() bool {
			if w != nil || nc.Status() != nats.CONNECTED {
				return true
			}
			reconnects = nc.Stats().Reconnects
			var err error
			if w, err = b.watchChanges(ctx, pattern); err != nil {
				b.store.log.Warn("change feed cannot watch again yet; retrying", "bucket", b.name, "err", err)
				w = nil
				retry = time.After(changesRetry)
				return true
			}
			return send(Change{Resumed: true})
		}
		for {
			var updates <-chan jetstream.KeyValueEntry
			if w != nil {
				updates = w.Updates()
			}
			select {
			case <-ctx.Done():
				return
			case s := <-status:
				// A drop counts even when the connection is back by now: the
				// watch may have missed changes meanwhile. The reconnect
				// count catches a drop whose event was not delivered.
				if s != nats.CONNECTED || nc.Stats().Reconnects != reconnects {
					if !lose() {
						return
					}
				}
				if nc.Status() == nats.CLOSED {
					return
				}
				if !resume() {
					return
				}
			case <-retry:
				retry = nil
				if !resume() {
					return
				}
			case e, ok := <-updates:
				if !ok {
					b.store.log.Warn("change feed's watch ended; watching again", "bucket", b.name)
					if !lose() {
						return
					}
					retry = time.After(changesRetry / 8)
					continue
				}
				if e == nil {
					continue
				}
				op := e.Operation()
				deleted := op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge
				if !send(Change{Key: e.Key(), Revision: e.Revision(), Behind: e.Delta(), Deleted: deleted}) {
					return
				}
			}
		}
	}()
	return out, nil
}

// changeWatch is one watch of a Changes feed, stopped when the feed loses
// it or ends.
type changeWatch struct {
	jetstream.KeyWatcher
	cancel context.CancelFunc
}

func (w *changeWatch) stop() {
	if w != nil {
		_ = w.Stop()
		w.cancel()
	}
}

// watchChanges starts a watch of changes from now on, keys and revisions
// only. The watch lives as long as its context, so it gets its own.
func (b *Bucket) watchChanges(ctx context.Context, pattern string) (*changeWatch, error) {
	wctx, cancel := context.WithCancel(ctx)
	created := make(chan struct{})
	// The watch's context must outlive its creation, which must still not
	// hang on a server that does not answer.
	go func() {
		select {
		case <-created:
		case <-time.After(b.store.timeout):
			cancel()
		}
	}()
	w, err := b.kv.Watch(wctx, pattern, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	close(created)
	if err != nil {
		cancel()
		return nil, err
	}
	return &changeWatch{KeyWatcher: w, cancel: cancel}, nil
}
