package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Binaries are the executables a deployment runs.
type Binaries struct {
	NATSServer string
	Zerorealm  string
	// Scenes is the folder of scenes realm nodes load: the workload's
	// exchange scene, from this package's testdata.
	Scenes string
}

// Build compiles nats-server (from the module version go.mod requires)
// and zerorealm into dir. It runs in the module's root, which moduleDir
// finds from the working directory.
func Build(ctx context.Context, dir string) (Binaries, error) {
	root, err := moduleDir()
	if err != nil {
		return Binaries{}, err
	}
	b := Binaries{NATSServer: filepath.Join(dir, "nats-server"), Zerorealm: filepath.Join(dir, "zerorealm"),
		Scenes: filepath.Join(root, "internal", "chaos", "testdata", "scenes")}
	for pkg, out := range map[string]string{"github.com/nats-io/nats-server/v2": b.NATSServer, "./cmd/zerorealm": b.Zerorealm} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("chaos: go build %s: %w\n%s", pkg, err, msg)
		}
	}
	return b, nil
}

// moduleDir is the nearest folder above the working directory holding
// go.mod.
func moduleDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("chaos: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Proc is a process the harness starts, kills and starts again with the
// same arguments. Its output goes to a log file beside its data.
type Proc struct {
	Name string
	args []string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func newProc(name, logFile string, args ...string) *Proc {
	return &Proc{Name: name, args: args, log: logFile}
}

// Start runs the process; it must not be running.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("chaos: %s is running", p.Name)
	}
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that a signal the test receives does not
	// reach it before the harness stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("chaos: start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Proc) Kill() {
	p.signal(syscall.SIGKILL)
}

// Stop asks the process to stop (SIGTERM) and kills it after grace.
func (p *Proc) Stop(grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
	case <-time.After(grace):
		p.Kill()
	}
}

func (p *Proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	<-p.done
	p.cmd = nil
}

// Running reports whether the process was started and has not exited.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// LogFile is where the process's output goes.
func (p *Proc) LogFile() string { return p.log }

// freePorts reserves n loopback ports and releases them for the processes
// to take.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

func execCommand(ctx context.Context, bin string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, bin, args...)
}
