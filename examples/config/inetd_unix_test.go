//go:build unix

package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
)

// TestInetd runs the server as inetd would, with the connection as its
// standard input and output, and checks that it echoes and then exits
// with status 0 once the client has closed its side.
func TestInetd(t *testing.T) {
	dir := testenv.SocketDir(t)
	if err := os.WriteFile(filepath.Join(dir, "inetd.toml"), []byte(`addr = "inetd"`), 0o644); err != nil {
		t.Fatal(err)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	server := os.NewFile(uintptr(fds[0]), "server end")
	clientFile := os.NewFile(uintptr(fds[1]), "client end")
	client, err := net.FileConn(clientFile)
	clientFile.Close()
	if err != nil {
		server.Close()
		t.Fatal(err)
	}
	defer client.Close()

	var stderr testenv.Buffer
	cmd := exec.Command(binPath, "inetd.toml")
	cmd.Dir = dir
	cmd.Stdin = server
	cmd.Stdout = server
	cmd.Stderr = &stderr
	cmd.WaitDelay = timeout
	err = cmd.Start()
	server.Close() // the child has its copy
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	const msg = "hello over inetd\n"
	client.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(client, msg); err != nil {
		t.Fatal(err)
	}
	if err := client.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(client)
	if err != nil || string(got) != msg {
		t.Errorf("echo over inetd: %q, %v; want %q; stderr:\n%s", got, err, msg, stderr.String())
	}
	select {
	case err := <-exited:
		exited <- err // for the deferred Kill
		if err != nil {
			t.Errorf("after the connection: %v; want exit status 0; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(timeout):
		t.Fatalf("still running %v after its one connection ended; stderr:\n%s", timeout, stderr.String())
	}
}
