package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// Kinds of address that NewAddress makes and ServeOn serves on.
const (
	OnPort         = "port"     // 127.0.0.1:PORT, a free port
	OnUnix         = "unix"     // an absolute socket path in a new directory
	OnUnixRelative = "relative" // ./NAME, in a new directory that is the program's working directory
	OnAbstract     = "abstract" // @anylisten-test-RANDOM, an abstract UNIX socket: Linux only
)

// Address is a new address for a program to listen on.
type Address struct {
	Kind string // one of the kinds above
	Addr string // as the program is told it: 127.0.0.1:PORT, /DIR/NAME, ./NAME or @NAME
	Path string // the socket file's absolute path, for OnUnix and OnUnixRelative; else ""
	Dir  string // the directory to start the program in: the socket file's, for OnUnixRelative; else "", the test's
}

// NewAddress returns a new address of kind: for OnPort, a free port of
// network ("tcp" or "udp", see FreePort); for OnUnix and OnUnixRelative,
// the socket file name in a new SocketDir. The test is skipped for
// OnAbstract outside Linux.
func NewAddress(t testing.TB, kind, network, name string) Address {
	t.Helper()
	a := Address{Kind: kind}
	switch kind {
	case OnPort:
		a.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePorts(t, network, 1)[0]))
	case OnUnix:
		a.Path = filepath.Join(SocketDir(t), name)
		a.Addr = a.Path
	case OnUnixRelative:
		a.Dir = SocketDir(t)
		a.Path = filepath.Join(a.Dir, name)
		a.Addr = "./" + name
	case OnAbstract:
		if runtime.GOOS != "linux" {
			t.Skipf("abstract UNIX sockets exist on Linux only, not on %s", runtime.GOOS)
		}
		a.Addr = fmt.Sprintf("@anylisten-test-%016x", rand.Uint64())
	default:
		t.Fatalf("unknown address kind %q", kind)
	}
	return a
}

// ServeOn starts a program on a new address of kind (see NewAddress) with
// start, which returns the program and the error of its wait to serve,
// and returns the address. A port that another process took in the
// meantime, which the program exited on, is replaced by a new one, up to
// five times in all; on any other error the test fails at once.
func ServeOn(t testing.TB, kind, network, name string, start func(a Address) (*Process, error)) Address {
	t.Helper()
	for attempt := 1; ; attempt++ {
		a := NewAddress(t, kind, network, name)
		p, err := start(a)
		if err == nil {
			return a
		}
		if kind == OnPort && attempt < 5 && addrInUse(p) {
			t.Logf("port of %s was taken meanwhile, trying another: %v", a.Addr, err)
			continue
		}
		t.Fatal(err)
	}
}
