package live

import "sync"

// sendQueue is the messages waiting for one connection's writer: a FIFO
// with the same bound a buffered channel of liveSendQueue slots had, but
// whose ring is grown as messages wait and dropped when it drains. A
// channel of 1,024 slices held 24 KiB per connection from the moment it
// connected, 48 MB for 2,000 avatars who each get a message or two a
// second; this holds a few slots until a client falls behind.
//
// The zero value is an empty queue. One writer takes; anyone may offer.
type sendQueue struct {
	mu   sync.Mutex
	ring [][]byte
	head int
	n    int
	// ready holds a token while messages wait, so that the writer can
	// select on it beside its other events.
	ready chan struct{}
}

const (
	// sendQueueKept is the ring an idle connection keeps: a score, a trust
	// change and a presence message fit without allocating.
	sendQueueKept = 4
)

// offer appends msg unless limit messages already wait; it never blocks.
func (q *sendQueue) offer(msg []byte, limit int) bool {
	one := [1][]byte{msg}
	return q.offerAll(one[:], limit)
}

// grow doubles the ring, up to limit slots, keeping the order.
func (q *sendQueue) grow(limit int) {
	size := min(max(sendQueueKept, 2*len(q.ring)), limit)
	ring := make([][]byte, size)
	for i := range q.n {
		ring[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.ring, q.head = ring, 0
}

// take removes the oldest message; ok is false when none waits.
func (q *sendQueue) take() (msg []byte, ok bool) {
	var one [1][]byte
	if got := q.takeSome(one[:0], 1); len(got) == 1 {
		return got[0], true
	}
	return nil, false
}

// offerAll appends msgs together, so that the writer finds them all at
// once, unless fewer than len(msgs) slots of limit are free; it never
// blocks.
func (q *sendQueue) offerAll(msgs [][]byte, limit int) bool {
	q.mu.Lock()
	if q.n+len(msgs) > limit {
		q.mu.Unlock()
		return false
	}
	for _, msg := range msgs {
		if q.n == len(q.ring) {
			q.grow(limit)
		}
		q.ring[(q.head+q.n)%len(q.ring)] = msg
		q.n++
	}
	ready := q.readyLocked()
	q.mu.Unlock()
	signal(ready)
	return true
}

// takeSome removes up to most of the oldest messages, appended to dst. A
// token is left for the writer only while more wait, so that a close or
// a ping is still not held up behind a long queue; a ring grown past what
// an idle connection keeps is let go once it drains.
func (q *sendQueue) takeSome(dst [][]byte, most int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	for ; q.n > 0 && most > 0; most-- {
		dst = append(dst, q.ring[q.head])
		q.ring[q.head] = nil
		q.head = (q.head + 1) % len(q.ring)
		q.n--
	}
	if q.n == 0 {
		q.head = 0
		if len(q.ring) > sendQueueKept {
			q.ring = nil
		}
	} else {
		signal(q.readyLocked())
	}
	return dst
}

// len is how many messages wait.
func (q *sendQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// wait is readable while a message may wait (take may still find none:
// a token can outlive the message it announced).
func (q *sendQueue) wait() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.readyLocked()
}

func (q *sendQueue) readyLocked() chan struct{} {
	if q.ready == nil {
		q.ready = make(chan struct{}, 1)
	}
	return q.ready
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
