package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/twin"
)

// Execution is one grant the gateway carried out at an actuator: what an
// operator of the machine, or a test of at-most-once delivery, holds the
// realm's answers to. Command is the command's hash, the same for every
// grant the realm signs for one Idempotency-Key, so two executions of one
// command are two lines with the same Command.
type Execution struct {
	Command    common.Hash `json:"command"`
	Nonce      uint64      `json:"nonce"`
	Actuator   string      `json:"actuator"`
	Op         twin.Op     `json:"op"`
	ValueMicro int64       `json:"value_micro"`
	Operator   string      `json:"operator"`
	At         time.Time   `json:"at"`
}

// ExecutionRecorder keeps each execution; Config.Executions.
type ExecutionRecorder interface {
	Record(Execution) error
}

// ExecutionLog appends each execution to a file as one JSON line, synced
// to disk before the gateway acknowledges the grant: once the realm has
// heard "done", the line is on disk. A gateway killed between the
// actuator's move and the sync loses that one line, so the log is a record
// of what was done, not an intent log that could stop a second execution.
type ExecutionLog struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
}

// OpenExecutionLog opens (or creates, mode 0600) the log at path for
// appending; earlier lines stay.
func OpenExecutionLog(path string) (*ExecutionLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("gateway: open the executions log: %w", err)
	}
	return &ExecutionLog{f: f}, nil
}

// Record appends e and syncs the file.
func (l *ExecutionLog) Record(e Execution) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	l.buf = append(append(l.buf[:0], line...), '\n')
	if _, err := l.f.Write(l.buf); err != nil {
		return fmt.Errorf("gateway: record an execution: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("gateway: record an execution: %w", err)
	}
	return nil
}

// Close closes the file.
func (l *ExecutionLog) Close() error { return l.f.Close() }

// ErrBadExecutionLog is returned by ReadExecutions for a line that is not
// an execution.
var ErrBadExecutionLog = errors.New("gateway: malformed executions log")

// maxExecutionLine bounds one line of the log: an execution is a few
// hundred bytes.
const maxExecutionLine = 4 << 10

// ReadExecutions parses an executions log, oldest first. A last line
// without its newline is one the gateway was writing when it stopped and
// is left out; any other line that is not an execution is an error.
func ReadExecutions(r io.Reader) ([]Execution, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i < len(data)-1 {
		data = data[:i+1]
	}
	var out []Execution
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 512), maxExecutionLine)
	for n := 1; sc.Scan(); n++ {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var e Execution
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadExecutionLog, n, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%w: line %d: more than one execution", ErrBadExecutionLog, n)
		}
		if e.Actuator == "" || (e.Command == common.Hash{}) {
			return nil, fmt.Errorf("%w: line %d: no command or actuator", ErrBadExecutionLog, n)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadExecutionLog, err)
	}
	return out, nil
}

// recordExecution hands the carried-out grant to the configured recorder;
// the actuator has moved already, so a failure to record is logged, not
// refused.
func (g *Gateway) recordExecution(gr twin.Grant, at time.Time) {
	if g.cfg.Executions == nil {
		return
	}
	e := Execution{Command: gr.Command, Nonce: gr.Nonce, Actuator: gr.Actuator, Op: gr.Op, ValueMicro: gr.ValueMicro, Operator: gr.Operator, At: at.UTC()}
	if err := g.cfg.Executions.Record(e); err != nil {
		g.log.Error("execution not recorded", "actuator", gr.Actuator, "command", gr.Command.Hex(), "err", err)
	}
}
