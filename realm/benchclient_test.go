//go:build linux

package realm

import (
	"bufio"
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A benchmark that measures the realm's CPU with getrusage must not count
// its own HTTP client's: an agent's request carries ~1.7 KB of token and
// proof that the client writes, which would be charged to the realm as an
// agent's overhead. So the clients run in a child process, this test
// binary run again with benchClientEnv naming a file that holds the
// requests, pre-signed, and the parent's getrusage counts only the realm
// and its embedded NATS (the standard pattern for a helper process in a Go
// test, as os/exec's own tests use).

// benchClientEnv, when set in a test binary's environment, makes it a
// benchmark's HTTP client rather than a test run: the value is the file
// of its benchClientJob.
const benchClientEnv = "ZR_BENCH_CLIENT_JOB"

func init() { benchClientMain = runBenchClient }

// benchClientJob is what the child sends: every request of the run,
// already signed, by Clients goroutines at once.
type benchClientJob struct {
	URL      string // the realm's base URL
	Clients  int
	Want     int // the status every answer must have
	Requests []benchRequest
}

type benchRequest struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// benchClientResult is what the child reports: its own CPU over the run,
// the requests answered as wanted, and the first failure.
type benchClientResult struct {
	CPU  time.Duration
	Done int
	Err  string
}

// benchClientRun is one run of a child client, measured.
type benchClientRun struct {
	Realm, Client time.Duration // CPU: this process's, and the child's
	Elapsed       time.Duration
}

// runClientProcess sends job's requests from a child process and returns
// the CPU each side spent while they were sent. The benchmark's timer
// covers the sending only: the child's start and its reading of the job
// are outside it.
func runClientProcess(b *testing.B, job benchClientJob) benchClientRun {
	b.Helper()
	run, err := clientProcess(b, b, job)
	if err != nil {
		b.Fatal(err)
	}
	return run
}

// benchTimer is the part of a benchmark's timer clientProcess runs.
type benchTimer interface {
	ResetTimer()
	StartTimer()
	StopTimer()
}

func clientProcess(tb testing.TB, timer benchTimer, job benchClientJob) (benchClientRun, error) {
	timer.StopTimer()
	file := filepath.Join(tb.TempDir(), "job.gob")
	f, err := os.Create(file)
	if err != nil {
		return benchClientRun{}, err
	}
	err = gob.NewEncoder(f).Encode(job)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return benchClientRun{}, fmt.Errorf("write the job: %w", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchClientEnv+"="+file)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return benchClientRun{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return benchClientRun{}, err
	}
	if err := cmd.Start(); err != nil {
		return benchClientRun{}, err
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		_ = cmd.Process.Kill()
		return benchClientRun{}, fmt.Errorf("bench client did not start: %q %v", line, err)
	}
	cpu0, start := processCPU(), time.Now()
	timer.ResetTimer() // ns/op, B/op and allocs/op of the sending alone, not of the setup
	timer.StartTimer()
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		_ = cmd.Process.Kill()
		return benchClientRun{}, err
	}
	var res benchClientResult
	err = json.NewDecoder(out).Decode(&res)
	timer.StopTimer()
	run := benchClientRun{Realm: processCPU() - cpu0, Client: res.CPU, Elapsed: time.Since(start)}
	if err != nil {
		return run, fmt.Errorf("bench client's report: %w", err)
	}
	if res.Err != "" || res.Done != len(job.Requests) {
		return run, fmt.Errorf("bench client: %d of %d answered as wanted: %s", res.Done, len(job.Requests), res.Err)
	}
	return run, nil
}

// report writes a run's figures per request: the realm's CPU (the
// headline), the client's, and the rate.
func (r benchClientRun) report(b *testing.B, n int, unit string) {
	b.ReportMetric(float64(r.Realm.Microseconds())/float64(n), "realm-cpu-us/"+unit)
	b.ReportMetric(float64(r.Client.Microseconds())/float64(n), "client-cpu-us/"+unit)
	b.ReportMetric(float64(n)/r.Elapsed.Seconds(), unit+"s/s")
}

// runBenchClient is a child's whole life: read the job, say ready, wait
// for go, send, report, exit.
func runBenchClient() {
	file := os.Getenv(benchClientEnv)
	if file == "" {
		return
	}
	res, err := sendAsBenchClient(file, os.Stdin, os.Stdout)
	if err != nil {
		res.Err = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
	os.Exit(0)
}

func sendAsBenchClient(file string, in io.Reader, out io.Writer) (benchClientResult, error) {
	var job benchClientJob
	f, err := os.Open(file)
	if err != nil {
		return benchClientResult{}, err
	}
	err = gob.NewDecoder(bufio.NewReader(f)).Decode(&job)
	_ = f.Close()
	if err != nil {
		return benchClientResult{}, fmt.Errorf("read the job: %w", err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * job.Clients}, Timeout: 30 * time.Second}
	if _, err := io.WriteString(out, "ready\n"); err != nil {
		return benchClientResult{}, err
	}
	if _, err := bufio.NewReader(in).ReadString('\n'); err != nil {
		return benchClientResult{}, fmt.Errorf("wait for go: %w", err)
	}
	cpu0 := processCPU()
	var (
		next, done atomic.Int64
		firstErr   sync.Once
		failure    error
		wg         sync.WaitGroup
	)
	fail := func(err error) { firstErr.Do(func() { failure = err }) }
	for range job.Clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(job.Requests) {
					return
				}
				r := job.Requests[i]
				req, err := http.NewRequest(r.Method, job.URL+r.Path, bytes.NewReader(r.Body))
				if err != nil {
					fail(err)
					return
				}
				req.Header = r.Header
				resp, err := hc.Do(req)
				if err != nil {
					fail(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != job.Want {
					fail(fmt.Errorf("request %d: %d %s", i, resp.StatusCode, body))
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return benchClientResult{CPU: processCPU() - cpu0, Done: int(done.Load())}, failure
}
