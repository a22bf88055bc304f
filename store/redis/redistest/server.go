package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Server is a private redis-server of one test, for faults the shared one
// must not suffer (frozen, stopped, evicting).
type Server struct {
	// URL reaches it (database 0).
	URL  string
	Addr string
	cmd  *exec.Cmd
}

// StartServer starts redis-server on a free loopback port with extra
// arguments (for example "--maxmemory-policy", "allkeys-lru"), without
// persistence, and stops it when t ends.
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	all := append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir()}, args...)
	cmd := exec.Command("redis-server", all...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	t.Cleanup(s.Stop)
	rdb := goredis.NewClient(&goredis.Options{Addr: s.Addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Any answer, NOAUTH included (a server started with a
		// password), says the server is up.
		err := rdb.Ping(context.Background()).Err()
		if err == nil || strings.Contains(err.Error(), "NOAUTH") || strings.Contains(err.Error(), "AUTH") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s does not answer: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (frozen or not) and waits until it is gone; later
// calls do nothing.
func (s *Server) Stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT)
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// Freeze stops the server's process (SIGSTOP) as a long fork or a stalled
// network would: connections stay open, nothing is answered.
func (s *Server) Freeze() { s.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw lets a frozen server go on.
func (s *Server) Thaw() { s.cmd.Process.Signal(syscall.SIGCONT) }
