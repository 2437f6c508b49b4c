package anylisten

// These tests have been compiled (GOOS=windows go test -c, go vet) but
// never run on the Linux machines where this package is developed: Wine
// hangs on go-winio's pipes. A Windows machine runs them with go test.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// pipeName returns a pipe path that no other test (or test run) uses.
func pipeName(t testing.TB) string {
	t.Helper()
	name := strings.NewReplacer("/", "-", `\`, "-").Replace(t.Name())
	return fmt.Sprintf(`\\.\pipe\anylisten-test-%d-%s-%08x`, os.Getpid(), name, rand.Uint32())
}

// listenPipeT listens on a fresh pipe with o and closes it at cleanup.
func listenPipeT(t testing.TB, o *Options) (net.Listener, Address) {
	t.Helper()
	addr := MustParseAddress(pipeName(t))
	ln, err := Listen(context.Background(), addr, o)
	if err != nil {
		t.Fatalf("Listen(%v): %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, addr
}

// dialPipe returns a dial function for roundTripDial that dials addr
// with Dial, within 5 s.
func dialPipe(addr Address) func() (net.Conn, error) {
	return func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return Dial(ctx, addr)
	}
}

// pipeHandle returns the Windows handle of a go-winio pipe connection.
func pipeHandle(t testing.TB, c net.Conn) windows.Handle {
	t.Helper()
	f, ok := c.(interface{ Fd() uintptr })
	if !ok {
		t.Fatalf("%T has no Fd method", c)
	}
	return windows.Handle(f.Fd())
}

// Listen gives go-winio's listener, unwrapped, whose Addr is the pipe's
// path; Dial reaches it, and bytes flow both ways, also more of them than
// a pipe buffer holds.
func TestNpipeListenDial(t *testing.T) {
	ln, addr := listenPipeT(t, nil)
	if got := fmt.Sprintf("%T", ln); !strings.Contains(got, "winio") {
		t.Errorf("Listen returned a %s, want go-winio's listener", got)
	}
	if ln.Addr().Network() != "pipe" || ln.Addr().String() != addr.Path() {
		t.Errorf("Addr() = %s %s, want pipe %s", ln.Addr().Network(), ln.Addr(), addr.Path())
	}
	server := roundTripDial(t, ln, dialPipe(addr))
	if got := fmt.Sprintf("%T", server); !strings.Contains(got, "winio") {
		t.Errorf("Accept returned a %s, want go-winio's pipe connection", got)
	}

	client, err := dialPipe(addr)()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server2.Close()
	big := bytes.Repeat([]byte("anylisten"), 1<<17) // 1.1 MB
	go func() {
		client.Write(big)
		client.Close()
	}()
	got, err := io.ReadAll(server2)
	if err != nil || !bytes.Equal(got, big) {
		t.Errorf("server read %d bytes, %v; want the %d written", len(got), err, len(big))
	}
}

// Address.DialContext lets an http.Client reach a server on a pipe.
func TestNpipeHTTP(t *testing.T) {
	ln, addr := listenPipeT(t, nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello over a pipe")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: addr.DialContext}, Timeout: 10 * time.Second}
	resp, err := client.Get("http://app/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "hello over a pipe" {
		t.Errorf("GET over the pipe: %q, %v", body, err)
	}
}

// The security descriptor becomes the pipe's: one that admits only this
// process's user lets it connect, and is what the pipe carries; one that
// admits only LocalSystem keeps it out.
func TestNpipeSecurityDescriptor(t *testing.T) {
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	sid := user.User.Sid

	t.Run("owner only", func(t *testing.T) {
		ln, addr := listenPipeT(t, &Options{NpipeSecurityDescriptor: "D:P(A;;GA;;;" + sid.String() + ")"})
		server := roundTripDial(t, ln, dialPipe(addr))
		sd, err := windows.GetSecurityInfo(pipeHandle(t, server), windows.SE_KERNEL_OBJECT, windows.DACL_SECURITY_INFORMATION)
		if err != nil {
			t.Fatal(err)
		}
		control, _, err := sd.Control()
		if err != nil {
			t.Fatal(err)
		}
		if control&windows.SE_DACL_PROTECTED == 0 {
			t.Errorf("the pipe's DACL is not protected (P): %v", sd)
		}
		dacl, _, err := sd.DACL()
		if err != nil {
			t.Fatal(err)
		}
		if dacl.AceCount != 1 {
			t.Fatalf("the pipe's DACL has %d entries, want 1: %v", dacl.AceCount, sd)
		}
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, 0, &ace); err != nil {
			t.Fatal(err)
		}
		aceSID := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		const fileAllAccess = 0x1F01FF // what GENERIC_ALL maps to for a file object
		if !aceSID.Equals(sid) || ace.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE ||
			ace.Mask != windows.GENERIC_ALL && ace.Mask&fileAllAccess != fileAllAccess {
			t.Errorf("the pipe's DACL is %v, want full access for %v only", sd, sid)
		}
	})

	t.Run("others denied", func(t *testing.T) {
		if sid.IsWellKnown(windows.WinLocalSystemSid) {
			t.Skip("the test runs as LocalSystem, whom the descriptor admits; run it as another user")
		}
		_, addr := listenPipeT(t, &Options{NpipeSecurityDescriptor: "D:P(A;;GA;;;SY)"})
		c, err := dialPipe(addr)()
		if err == nil {
			c.Close()
			t.Fatal("Dial reached a pipe whose descriptor admits only LocalSystem")
		}
		if !errors.Is(err, windows.ERROR_ACCESS_DENIED) || !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Dial = %v, want ERROR_ACCESS_DENIED", err)
		}
	})
}

// A descriptor Windows cannot parse fails Listen with an error that names
// the option, and no pipe is created.
func TestNpipeBadSecurityDescriptor(t *testing.T) {
	addr := MustParseAddress(pipeName(t))
	ln, err := Listen(context.Background(), addr, &Options{NpipeSecurityDescriptor: "D:P(A;;GA;;;NOSUCHACCOUNT)"})
	if err == nil {
		ln.Close()
		t.Fatal("Listen with an SDDL naming no account succeeded")
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "listen" || oe.Net != "npipe" ||
		!strings.Contains(err.Error(), `option npipe_security_descriptor "D:P(A;;GA;;;NOSUCHACCOUNT)"`) {
		t.Errorf("Listen = %v, want a listen npipe *net.OpError naming the option", err)
	}
	if pipeExists(addr.Path()) {
		t.Errorf("a failed Listen left the pipe %s behind", addr.Path())
	}
}

// The input and output buffer sizes are the pipe's, as Windows keeps
// them (rounded up, perhaps).
func TestNpipeBufferSizes(t *testing.T) {
	ln, addr := listenPipeT(t, &Options{RecvBufferSize: 4096, SendBufferSize: 8192})
	server := roundTripDial(t, ln, dialPipe(addr))
	var flags, outSize, inSize, maxInstances uint32
	if err := windows.GetNamedPipeInfo(pipeHandle(t, server), &flags, &outSize, &inSize, &maxInstances); err != nil {
		t.Fatal(err)
	}
	if inSize < 4096 || outSize < 8192 {
		t.Errorf("the server end's buffers are %d in, %d out; want at least 4096 in (recv) and 8192 out (send)", inSize, outSize)
	}
	if flags&windows.PIPE_TYPE_MESSAGE != 0 {
		t.Error("the pipe is in message mode, want byte mode")
	}
}

// Close ends Accept with net.ErrClosed and removes the pipe, whose name
// is then free for a new Listen.
func TestNpipeClose(t *testing.T) {
	addr := MustParseAddress(pipeName(t))
	ln, err := Listen(context.Background(), addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	closeEndsAccept(t, ln)
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("a later Accept = %v, want net.ErrClosed", err)
	}
	if c, err := dialPipe(addr)(); err == nil {
		c.Close()
		t.Error("Dial reached a closed pipe")
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Dial of a closed pipe = %v, want ERROR_FILE_NOT_FOUND", err)
	}
	ln2, err := Listen(context.Background(), addr, nil)
	if err != nil {
		t.Fatalf("Listen after Close: %v", err)
	}
	ln2.Close()
}

// A second Listen on a pipe name in use fails with EADDRINUSE, while the
// first server listens and while a connection it accepted is open; it
// never joins the first server's pipe (go-winio creates the first
// instance with FILE_CREATE).
func TestNpipeSecondListen(t *testing.T) {
	addr := MustParseAddress(pipeName(t))
	ln, err := Listen(context.Background(), addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	inUse := func(when string) {
		t.Helper()
		ln2, err := Listen(context.Background(), addr, nil)
		if err == nil {
			ln2.Close()
			t.Fatalf("a second Listen %s succeeded", when)
		}
		var oe *net.OpError
		if !errors.Is(err, syscall.EADDRINUSE) || !errors.As(err, &oe) || !strings.Contains(err.Error(), "a pipe of this name exists") {
			t.Errorf("a second Listen %s = %v, want a *net.OpError wrapping EADDRINUSE that says the pipe exists", when, err)
		}
	}
	inUse("while the first listens")

	client, server, err := exchangeWith(ln, dialPipe(addr))
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	inUse("while a connection of the closed first is open")
	client.Close()
	server.Close()
	ln3, err := Listen(context.Background(), addr, nil)
	if err != nil {
		t.Fatalf("Listen once the first and its connections are closed: %v", err)
	}
	ln3.Close()
}

// The UNIX socket file's mode and owner with a pipe and no descriptor are
// an error (the pipe would get Windows's wider default); with a
// descriptor they are ignored; TCP options are ignored.
func TestNpipeOptions(t *testing.T) {
	addr := MustParseAddress(pipeName(t))
	ln, err := Listen(context.Background(), addr, &Options{UnixListenChmod: 0o600})
	if err == nil {
		ln.Close()
		t.Fatal("Listen with unix_listen_chmod and no npipe_security_descriptor succeeded")
	}
	if !strings.Contains(err.Error(), "set npipe_security_descriptor") {
		t.Errorf("Listen = %v, want it to name npipe_security_descriptor", err)
	}
	if pipeExists(addr.Path()) {
		t.Errorf("a refused Listen created the pipe %s", addr.Path())
	}
	ln, addr = listenPipeT(t, &Options{UnixListenChmod: 0o600, NpipeSecurityDescriptor: "D:P(A;;GA;;;OW)",
		TCPKeepalive: &TCPKeepalive{Off: true}, TCPListenBacklog: 8, TCPKillPort: true, UnixListenUnlink: true})
	roundTripDial(t, ln, dialPipe(addr))
}

// ListenAll merges a pipe with a TCP listener.
func TestNpipeListenAll(t *testing.T) {
	pipe := MustParseAddress(pipeName(t))
	ln, err := ListenAll(context.Background(), []Address{pipe, MustParseAddress("127.0.0.1:0")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	roundTripDial(t, ln, dialPipe(pipe))
}
