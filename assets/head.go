package assets

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// ErrRolledBack reports a ledger that lacks receipts this node signed: its
// newest records were deleted, or it was replaced by an older copy.
var ErrRolledBack = errors.New("assets: the ledger lacks receipts this node signed")

// The ledger lives in NATS, which the realm does not trust to keep what
// it stored: whoever can write it can delete the newest records, and a
// restarted node would rebuild its read model without them (balances and
// owners as they were before). Each node keeps the head of its own receipt
// chain (the index and digest of the newest receipt it signed and stored)
// in a file of its data directory, outside NATS, and at start finds that
// receipt in the ledger or refuses to start.
//
// The file is written after the receipt block is stored, by one goroutine
// that keeps only the newest head and writes at most every headWriteEvery:
// it may lag the chain by that much when the node dies, which a start
// accepts (the ledger is ahead of the file, never behind it), and it costs
// the receipt path nothing.

// head is the newest receipt of a node's chain.
type head struct {
	Index  uint64
	Digest common.Hash
}

const headVersion = "zerorealm-ledger-head/v1"

func (h head) encode() []byte {
	return []byte(fmt.Sprintf("%s %d %s\n", headVersion, h.Index, h.Digest.Hex()))
}

// parseHead reads a head file's content: the version, the index and the
// digest (0x and 64 hex digits), separated by one space.
func parseHead(b []byte) (head, error) {
	fields := strings.Split(strings.TrimSuffix(string(b), "\n"), " ")
	if len(fields) != 3 || fields[0] != headVersion {
		return head{}, fmt.Errorf("want %q, an index and a digest", headVersion)
	}
	index, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil || strconv.FormatUint(index, 10) != fields[1] {
		return head{}, fmt.Errorf("index %q is not a decimal number", fields[1])
	}
	d := fields[2]
	if len(d) != 66 || !strings.HasPrefix(d, "0x") || strings.Trim(d[2:], "0123456789abcdefABCDEF") != "" {
		return head{}, fmt.Errorf("digest %q is not 0x and 64 hex digits", d)
	}
	return head{Index: index, Digest: common.HexToHash(d)}, nil
}

// checkHead compares the head file (if any) with the node's chain in the
// read model, complete at start-up.
func (l *Ledger) checkHead() error {
	b, err := os.ReadFile(l.cfg.HeadFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil // first start, or an operator accepted the ledger as it is
	}
	if err != nil {
		return fmt.Errorf("assets: read the ledger head: %w", err)
	}
	want, err := parseHead(b)
	if err != nil {
		return fmt.Errorf("assets: ledger head %s: %w; delete it to accept the ledger as it is", l.cfg.HeadFile, err)
	}
	l.view.mu.RLock()
	var have []SignedReceipt
	if cv := l.view.chains[l.cfg.Node]; cv != nil {
		have = cv.receipts
	}
	l.view.mu.RUnlock()
	if want.Index < uint64(len(have)) && have[want.Index].Receipt.Index == want.Index && have[want.Index].Digest == want.Digest {
		return nil
	}
	return fmt.Errorf("%w: node %s signed receipt %d (%s), the ledger holds %d of its receipts and not that one: its newest records were deleted or it was replaced by an older copy; restore the NATS store from a backup, or delete %s to accept the ledger as it is",
		ErrRolledBack, l.cfg.Node, want.Index, want.Digest.Hex(), len(have), l.cfg.HeadFile)
}

// headWriteEvery bounds how often the head file is rewritten: a block is
// stored every few transfers, and a file replaced each time would cost
// the receipt path more than the rest of the sealing. The file may then
// lag the chain by this long, which a start accepts.
const headWriteEvery = 100 * time.Millisecond

// headWriter keeps the head file current from one goroutine.
type headWriter struct {
	path string
	log  *slog.Logger
	ch   chan head // holds at most the newest head not yet written
	stop chan struct{}
	done chan struct{}
}

func startHeadWriter(path string, log *slog.Logger) *headWriter {
	w := &headWriter{path: path, log: log, ch: make(chan head, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			var h head
			select {
			case h = <-w.ch:
			case <-w.stop:
				select { // the last head, if one is waiting
				case h = <-w.ch:
					w.record(h)
				default:
				}
				return
			}
			w.record(h)
			t := time.NewTimer(headWriteEvery)
			select {
			case <-t.C:
			case <-w.stop:
				t.Stop()
			}
		}
	}()
	return w
}

func (w *headWriter) record(h head) {
	if err := w.write(h); err != nil {
		w.log.Error("ledger head not recorded; a rollback of the ledger's newest records would go unnoticed at the next start", "file", w.path, "err", err)
	}
}

// update replaces the head waiting to be written, without blocking.
func (w *headWriter) update(h head) {
	for {
		select {
		case w.ch <- h:
			return
		default:
		}
		select {
		case <-w.ch:
		default:
		}
	}
}

// write replaces the file atomically, so a crash leaves the old head or
// the new one.
func (w *headWriter) write(h head) error {
	tmp, err := os.CreateTemp(filepath.Dir(w.path), ".ledger-head-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(h.encode()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), w.path)
}

// close writes the last head and stops.
func (w *headWriter) close() {
	close(w.stop)
	<-w.done
}
