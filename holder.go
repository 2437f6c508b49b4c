package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/anylisten/anylisten/internal/holder"
)

// killPortOption names Options.TCPKillPort in errors, as a config key and
// as a flag.
const killPortOption = "the tcp_kill_port option (--tcp-kill-port)"

// killPortWait bounds how long Listen, with TCPKillPort, waits for the
// port to be free after it sent SIGTERM to its holders; killPortPoll is
// how often it tries to bind meanwhile.
const (
	killPortWait = 5 * time.Second
	killPortPoll = 20 * time.Millisecond
)

// portInUse handles err, the *net.OpError of a TCP bind that failed with
// EADDRINUSE: it names the holders of the port in the error, or, with
// kill, stops them (see Options.TCPKillPort) and calls listen again until
// the port is free.
func portInUse(ctx context.Context, err error, listen func() (net.Listener, error), kill, v6only bool) (net.Listener, error) {
	oe, ok := err.(*net.OpError)
	if !ok {
		return nil, err
	}
	ta, ok := oe.Addr.(*net.TCPAddr)
	if !ok {
		return nil, err
	}
	h := holder.TCP(ta, v6only)
	if !kill {
		return nil, heldBy(oe, h, "")
	}
	if h.Uncertain {
		return nil, heldBy(oe, h, fmt.Sprintf("%s does not stop a holder that may not hold this address: an IPv6 wildcard "+
			"socket clashes with an IPv4 address only if it is dual stack, which /proc does not show; stop the holder yourself", killPortOption))
	}
	if why := refuseKill(h); why != "" {
		return nil, heldBy(oe, h, why)
	}
	for _, p := range h.Procs {
		if err := terminate(p); err != nil {
			return nil, heldBy(oe, h, fmt.Sprintf("%s could not send SIGTERM to %s: %v", killPortOption, p, err))
		}
	}
	deadline := time.NewTimer(killPortWait)
	defer deadline.Stop()
	poll := time.NewTicker(killPortPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			e := *oe
			e.Err = fmt.Errorf("waiting for the port to be free after %s sent SIGTERM to %s: %w", killPortOption, h, ctx.Err())
			return nil, &e
		case <-deadline.C:
			return nil, heldBy(oe, holder.TCP(ta, v6only), fmt.Sprintf("%s sent SIGTERM to %s, and the port was still in use %v later; "+
				"it never sends SIGKILL: stop the holder yourself", killPortOption, h, killPortWait))
		case <-poll.C:
		}
		ln, err := listen()
		if !errors.Is(err, syscall.EADDRINUSE) {
			return ln, err
		}
	}
}

// udpInUse names the holders of the port in err, the *net.OpError of a
// UDP bind that failed with EADDRINUSE, where the system shows them.
func udpInUse(err error, v6only bool) error {
	oe, ok := err.(*net.OpError)
	if !ok {
		return err
	}
	ua, ok := oe.Addr.(*net.UDPAddr)
	if !ok {
		return err
	}
	return heldBy(oe, holder.UDP(ua, v6only), "")
}

// refuseKill says why TCPKillPort does not stop the holders h, or "" if
// it may send each of them SIGTERM.
func refuseKill(h holder.Holders) string {
	uid, euid := os.Getuid(), os.Geteuid()
	notRoot := "this process runs as uid " + strconv.Itoa(euid) + ", not root"
	for _, p := range h.Procs {
		switch {
		case p.PID == os.Getpid():
			return fmt.Sprintf("%s does not stop this process itself, which holds the port: is the address given twice?", killPortOption)
		case p.PID == 1:
			return fmt.Sprintf("%s does not stop %s, the init process: stop the socket unit (or container) that holds the port instead", killPortOption, p)
		case euid != 0 && p.UID >= 0 && p.UID != uid && p.UID != euid:
			return fmt.Sprintf("%s does not stop %s: it belongs to uid %d, and %s", killPortOption, p, p.UID, notRoot)
		}
	}
	for _, owner := range h.HiddenUIDs {
		if euid != 0 && owner != uid && owner != euid {
			return fmt.Sprintf("%s does not stop the holder: it belongs to uid %d, and %s", killPortOption, owner, notRoot)
		}
	}
	if len(h.HiddenUIDs) > 0 {
		return fmt.Sprintf("%s cannot stop the holder: its process is not visible to this one (another PID namespace, or /proc mounted with hidepid)", killPortOption)
	}
	if len(h.Procs) == 0 {
		return fmt.Sprintf("%s found no process that holds the port (a socket that is bound but not listening?)", killPortOption)
	}
	return ""
}

// heldBy returns a copy of oe whose error names the holders h and adds
// why, if not "".
func heldBy(oe *net.OpError, h holder.Holders, why string) error {
	e := *oe
	e.Err = &heldError{err: oe.Err, holders: h.String(), why: why}
	return &e
}

// heldError is the error of a bind that found the address in use,
// "bind: address already in use (held by pid 1234 (hello))", with why
// Options.TCPKillPort did not help, if it was set. It unwraps to the
// bind's error.
type heldError struct {
	err     error
	holders string // holder.Holders.String, "" if none was found
	why     string
}

func (e *heldError) Error() string {
	s := e.err.Error()
	if e.holders != "" {
		s += " (held by " + e.holders + ")"
	}
	if e.why != "" {
		s += "; " + e.why
	}
	return s
}

func (e *heldError) Unwrap() error { return e.err }
