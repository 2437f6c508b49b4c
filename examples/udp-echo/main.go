// Command udp-echo is the smallest datagram server built on anylisten: it
// sends every datagram back to its sender, unchanged, on any datagram
// address anylisten takes. It is the Go twin of the raw UDP example of the
// Rust framework tako (its examples/udp-echo), and hello's UDP twin.
//
// Usage:
//
//	udp-echo [OPTIONS] [LISTEN_ADDRESS]
//
// LISTEN_ADDRESS defaults to 127.0.0.1:8080: a UDP address, a UNIX
// datagram socket path, a Linux abstract name, or a datagram socket passed
// by systemd (ListenDatagram=). Options and the argument may come in any
// order; -- ends the options. Run udp-echo -h for every address form and
// option.
//
// Over a UNIX socket, the echo goes to the address the datagram came from:
// a client must bind its own socket to a path or name to get it (socat's
// bind=). A datagram from an unbound socket cannot be answered and is
// logged; so is one longer than 64 KiB (UNIX sockets only: no UDP
// datagram is), which would come back cut.
//
// Help, errors and logs go to standard error. udp-echo prints "listening
// on ADDR" once its socket is open, and on SIGINT or SIGTERM stops
// reading, answers the datagram it has in hand, closes the socket
// (removing its UNIX socket file) and exits with status 0. On SIGHUP it
// restarts without losing a datagram: a new udp-echo takes the socket
// over, and once it is ready, this one stops reading, answers what it
// read, and exits 0; what it did not read waits in the socket for the new
// one. Before it
// exits it logs its pid and how many datagrams it answered. Command-line
// errors exit with status 2, a failure to listen or read with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/anylisten/anylisten"
)

const defaultAddress = "127.0.0.1:8080"

func main() {
	log.SetFlags(0)
	log.SetPrefix("udp-echo: ")

	var opts anylisten.Options
	opts.RegisterFlags(flag.CommandLine)
	restartTimeout := flag.Duration("restart-timeout", 30*time.Second,
		"on SIGHUP, how long to wait for the new udp-echo to be ready before killing it and serving on")
	flag.Usage = usage
	args, err := parseArgs(flag.CommandLine, os.Args[1:])
	if err != nil {
		// Not reached: flag.CommandLine exits by itself, with 0 after -h
		// and 2 after printing an error and the usage.
		os.Exit(2)
	}
	// One address: ListenPacket serves one socket, so there is no
	// --listen to repeat, as hello has.
	s := defaultAddress
	switch len(args) {
	case 1:
		s = args[0]
	case 0:
	default:
		log.Printf("too many arguments: %q; want at most LISTEN_ADDRESS (-h for help)", args[1:])
		os.Exit(2)
	}
	addr, err := anylisten.ParseAddress(s)
	if err != nil {
		log.Print(err)
		os.Exit(2)
	}
	if err := serve(addr, &opts, *restartTimeout); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// parseArgs parses flags and returns the positional arguments, which may
// stand before, between and after the flags, as hello's do. fs.Parse stops
// at the first argument that is not a flag and after --; parseArgs takes
// that argument and parses the rest again, and after -- takes everything
// that is left.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// Parse consumed everything before rest. If the last of that is
		// --, the flags have ended. (No flag of udp-echo takes "--" as
		// its value, so a consumed "--" is always the terminator.)
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// serve echoes datagrams on addr until SIGINT or SIGTERM, which stop it,
// or SIGHUP, which restarts it: a new udp-echo (the binary as it is on
// disk now, with the same arguments) takes over the socket, and this one
// stops reading and exits once the new one reads.
func serve(addr anylisten.Address, opts *anylisten.Options, restartTimeout time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	up := anylisten.Upgrader{ReadyTimeout: restartTimeout}
	pc, err := up.ListenPacket(ctx, addr, opts)
	if err != nil {
		return err
	}
	log.Printf("listening on %s", pc.LocalAddr())

	// Ready before reading: a predecessor that finds this process not
	// ready in time stops it, and datagrams it had read would go with
	// it; until the first read, they wait in the socket.
	if err := anylisten.Ready(); err != nil {
		log.Print(err)
	}
	for _, s := range anylisten.Inherited() { // after Ready, which closes dropped hand-overs
		if s.TakenBy == "" && !s.Closed {
			log.Printf("passed socket fd %d (%s) on %v is not listened on", s.FD, s.Name, s.Addr)
		}
	}
	type result struct {
		answered int
		err      error
	}
	done := make(chan result, 1)
	go func() {
		n, err := echo(pc)
		done <- result{n, err}
	}()

	for {
		select {
		case r := <-done:
			// echo returns by itself only when reading fails for good.
			pc.Close()
			log.Printf("datagrams answered by pid %d: %d", os.Getpid(), r.answered)
			return fmt.Errorf("read: %w", r.err)
		case <-hup:
			pid, err := up.Upgrade(ctx)
			if err != nil {
				log.Printf("restart failed, serving on: %v", err)
				continue
			}
			log.Printf("restarted as pid %d; answering what was read", pid)
		case <-ctx.Done():
			stop() // a second signal kills the process at once
			log.Print("signal received, stopping")
		}
		break
	}
	// Stop reading: a deadline in the past makes ReadFrom return, in a
	// read in progress too; a datagram not read stays in the socket, for
	// the successor if there is one. The datagram in hand is answered,
	// within finishTimeout (a UNIX peer whose queue is full blocks it).
	pc.SetReadDeadline(time.Unix(1, 0))
	pc.SetWriteDeadline(time.Now().Add(finishTimeout))
	r := <-done
	// Closing the socket removes its UNIX socket file, unless a successor
	// serves it.
	err = pc.Close()
	log.Printf("datagrams answered by pid %d: %d", os.Getpid(), r.answered)
	return errors.Join(r.err, err)
}

// finishTimeout bounds how long udp-echo tries to send its last answer
// when it stops.
const finishTimeout = 5 * time.Second

// maxDatagram is the longest datagram udp-echo answers: every UDP
// datagram (at most 65,507 bytes over IPv4, 65,527 over IPv6) and a UNIX
// datagram of up to 64 KiB.
const maxDatagram = 64 << 10

// echo sends every datagram read on pc back to its sender, until reading
// fails. It returns the number of datagrams answered, and nil if reading
// stopped at the read deadline.
func echo(pc net.PacketConn) (answered int, err error) {
	// One byte more than the longest datagram answered: a datagram that
	// fills the buffer was cut, and is not sent back shortened.
	buf := make([]byte, maxDatagram+1)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return answered, nil
			}
			return answered, err
		}
		switch {
		case from == nil:
			log.Printf("cannot answer a datagram of %d bytes from an unbound UNIX socket: the sender must bind an address (socat: bind=)", n)
			continue
		case n > maxDatagram:
			log.Printf("not answering a datagram from %v: longer than %d bytes", from, maxDatagram)
			continue
		}
		if _, err := pc.WriteTo(buf[:n], from); err != nil {
			log.Printf("answering %v: %v", from, err)
			continue
		}
		answered++
	}
}

// usage prints the help text to the flag set's output, standard error.
func usage() {
	w := flag.CommandLine.Output()
	indent := func(s string) string { return "        " + strings.ReplaceAll(s, "\n", "\n        ") }
	fmt.Fprintf(w, `Demo server for anylisten: sends every datagram back to its sender, unchanged.

Usage: udp-echo [OPTIONS] [LISTEN_ADDRESS]

Arguments:
  LISTEN_ADDRESS
%s
        (default %s)
        Over a UNIX socket, a client must bind its own address to get
        the echo (socat: bind=CLIENT_PATH).

Options (they may come before or after the argument; -- ends them; --name
and -name are the same). Those for TCP connections (keep-alive, backlog,
kill-port) do not apply to datagram sockets and are ignored:
  -h, --help
        print this help and exit
`, indent(anylisten.PacketAddressHelp), defaultAddress)
	flag.PrintDefaults()
}
