package cpuload_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/cpuload"
)

// A /proc/stat as a 2-core Linux machine writes it.
const procStat = `cpu  4705 356 584 3699176 23060 0 277 0 0 0
cpu0 1393 280 283 1846452 12018 0 186 0 0 0
cpu1 3312 76 301 1852724 11042 0 91 0 0 0
intr 114930548 113199788 3 0 5 263 0 4 [... 242 more]
ctxt 1990473
btime 1062191376
processes 2915
procs_running 1
procs_blocked 0
`

func TestParseProcStatReadsIdle(t *testing.T) {
	got, err := cpuload.ParseProcStat([]byte(procStat))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Duration(3699176) * 10 * time.Millisecond; got != want {
		t.Fatalf("idle = %v, want %v (the aggregate line's idle, without its iowait, which may go back)", got, want)
	}
}

func TestParseProcStatRefusesWhatItCannotRead(t *testing.T) {
	for name, in := range map[string]string{
		"empty":            "",
		"per-core only":    "cpu0 1 2 3 4 5\ncpu1 1 2 3 4 5\n",
		"short line":       "cpu  1 2 3\n",
		"not a number":     "cpu  1 2 3 x 5 6\n",
		"negative":         "cpu  1 2 3 -4 5 6\n",
		"overflow":         "cpu  1 2 3 18446744073709551615 5 6\n",
		"overflow as time": "cpu  1 2 3 922337203685477581 5 6\n",
	} {
		if d, err := cpuload.ParseProcStat([]byte(in)); err == nil {
			t.Errorf("%s: idle %v, want an error", name, d)
		} else if !strings.HasPrefix(err.Error(), "cpuload: ") {
			t.Errorf("%s: error %q does not say where it comes from", name, err)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte(procStat))
	f.Add([]byte("cpu 1 2 3 4 5"))
	f.Add([]byte("cpu  1 2 3 18446744073709551615 5 6\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := cpuload.ParseProcStat(b)
		if err == nil && d < 0 {
			t.Fatalf("negative idle %v from %q", d, b)
		}
	})
}

// readings plays back cumulative readings, one per Sample.
type readings struct {
	next []cpuload.Reading
	err  error
}

func (r *readings) read() (cpuload.Reading, error) {
	if r.err != nil {
		return cpuload.Reading{}, r.err
	}
	x := r.next[0]
	r.next = r.next[1:]
	return x, nil
}

func reading(process, idle float64) cpuload.Reading {
	return cpuload.Reading{Process: secs(process), MachineIdle: secs(idle), MachineKnown: true}
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func TestMeterRatesOverItsWindow(t *testing.T) {
	src := &readings{}
	m := cpuload.NewMeter(5*time.Second, src.read)
	t0 := time.Unix(1000, 0)
	if _, err := m.Rates(); !errors.Is(err, cpuload.ErrNoRates) {
		t.Fatalf("rates before any reading: %v, want ErrNoRates", err)
	}
	// 1 core busy and 0.5 idle for 5 s, then 1.5 busy and none idle.
	for i := 0; i <= 10; i++ {
		p, idle := float64(i), 0.5*float64(i)
		if i > 5 {
			p, idle = 5+1.5*float64(i-5), 2.5
		}
		src.next = append(src.next, reading(p, idle))
		if err := m.Sample(t0.Add(time.Duration(i) * time.Second)); err != nil {
			t.Fatal(err)
		}
		if i == 5 {
			r, err := m.Rates()
			if err != nil || !near(r.ProcessCores, 1) || !near(r.IdleCores, 0.5) || r.Over != 5*time.Second || !r.MachineKnown {
				t.Fatalf("after 5 s: %+v, %v; want 1 core used, 0.5 idle, over 5 s", r, err)
			}
		}
	}
	r, err := m.Rates()
	if err != nil || !near(r.ProcessCores, 1.5) || !near(r.IdleCores, 0) || r.Over != 5*time.Second || !r.At.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("after 10 s: %+v, %v; want only the last 5 s: 1.5 cores used, none idle", r, err)
	}
}

func TestMeterStartsAgainWhenACounterGoesBack(t *testing.T) {
	src := &readings{next: []cpuload.Reading{reading(10, 10), reading(11, 11), reading(1, 12), reading(3, 13)}}
	m := cpuload.NewMeter(0, src.read)
	t0 := time.Unix(1000, 0)
	for i := range 4 {
		if err := m.Sample(t0.Add(time.Duration(i) * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := m.Rates()
	if err != nil || !near(r.ProcessCores, 2) || r.Over != time.Second {
		t.Fatalf("%+v, %v; want the rates of the last second alone, after the counter went back", r, err)
	}
}

func TestMeterForgetsEverythingWhenAReadingFails(t *testing.T) {
	src := &readings{next: []cpuload.Reading{reading(1, 1), reading(2, 2)}}
	m := cpuload.NewMeter(0, src.read)
	t0 := time.Unix(1000, 0)
	_ = m.Sample(t0)
	_ = m.Sample(t0.Add(time.Second))
	if _, err := m.Rates(); err != nil {
		t.Fatal(err)
	}
	src.err = errors.New("no /proc")
	if err := m.Sample(t0.Add(2 * time.Second)); err == nil {
		t.Fatal("a failed reading was not reported")
	}
	if _, err := m.Rates(); !errors.Is(err, cpuload.ErrNoRates) {
		t.Fatalf("rates after a failed reading: %v, want ErrNoRates: they would span the failure", err)
	}
}

func TestMeterIgnoresTheMachineWhereItIsUnknown(t *testing.T) {
	src := &readings{next: []cpuload.Reading{{Process: secs(1)}, {Process: secs(1.5)}}}
	m := cpuload.NewMeter(0, src.read)
	t0 := time.Unix(1000, 0)
	_ = m.Sample(t0)
	_ = m.Sample(t0.Add(time.Second))
	r, err := m.Rates()
	if err != nil || r.MachineKnown || r.IdleCores != 0 || !near(r.ProcessCores, 0.5) {
		t.Fatalf("%+v, %v; want half a core used and the machine unknown", r, err)
	}
}

// The real reading: this process's CPU time grows with work, and on
// Linux the machine's idle time is known.
func TestReadMeasuresThisProcess(t *testing.T) {
	before, err := cpuload.Read()
	if err != nil {
		t.Fatal(err)
	}
	spinFor(20 * time.Millisecond)
	after, err := cpuload.Read()
	if err != nil {
		t.Fatal(err)
	}
	if after.Process <= before.Process {
		t.Fatalf("process CPU %v then %v: work did not show", before.Process, after.Process)
	}
	if runtime.GOOS == "linux" && (!after.MachineKnown || after.MachineIdle < before.MachineIdle) {
		t.Fatalf("machine idle %+v then %+v: want known and not going back on Linux", before, after)
	}
}

// spinFor keeps one core busy until the process has used d of CPU time.
func spinFor(d time.Duration) {
	start, _ := cpuload.Read()
	x := 0
	for {
		for i := range 100000 {
			x += i
		}
		if now, _ := cpuload.Read(); now.Process-start.Process >= d || x == -1 {
			return
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
