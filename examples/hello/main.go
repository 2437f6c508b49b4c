// Command hello is the smallest server built on anylisten: it serves one
// text as the body of every HTTP request, on any address anylisten takes.
// It is the Go twin of tokio-listener's clap_axum example.
//
// Usage:
//
//	hello [OPTIONS] [LISTEN_ADDRESS] [TEXT_TO_SERVE]
//	hello [OPTIONS] --listen ADDRESS [--listen ADDRESS ...] [TEXT_TO_SERVE]
//
// LISTEN_ADDRESS defaults to 127.0.0.1:8080 and TEXT_TO_SERVE to
// "Hello, world\n". The text is served exactly as given: nothing is
// appended, so pass $'text\n' for curl to end with a newline. Options and
// arguments may be mixed in any order; -- ends the options, and - alone is
// an argument (the inetd address). Run hello -h for every address form and
// option.
//
// hello never writes to standard output: help, errors and logs go to
// standard error, because in inetd mode standard output is the connection.
// It prints "listening on ADDR" once it accepts connections, and on
// SIGINT or SIGTERM closes the listener (removing its UNIX socket file) and
// exits with status 0, as it also does after the one connection of inetd mode
// or of systemd's Accept=yes. Command-line errors exit with status 2, a
// failure to listen or serve with status 1.
//
// In inetd mode standard error may be the connection too: classic inetd
// gives a program its connection as fds 0, 1 and 2, and so does systemd
// with StandardInput=socket unless StandardError= says otherwise. Then
// anylisten's Listen points standard error at /dev/null along with stdin
// and stdout, and what hello logs is lost rather than sent to the client
// ahead of the HTTP response; the exit status still tells.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/anylisten/anylisten"
	"github.com/anylisten/anylisten/httpdrain"
)

const (
	defaultAddress = "127.0.0.1:8080"
	defaultText    = "Hello, world\n"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("hello: ")

	var opts anylisten.Options
	opts.RegisterFlags(flag.CommandLine)
	// A UNIX peer the allow lists (--unix-allow-uid, --unix-allow-gid)
	// refuse is logged, never dropped silently.
	opts.UnixRefused = func(r anylisten.Refusal) { log.Print(r) }
	restartTimeout := flag.Duration("restart-timeout", 30*time.Second,
		"on SIGHUP, how long to wait for the new hello to be ready before killing it and serving on")
	var listen anylisten.AddressList
	flag.Var(&listen, "listen", "listen on `ADDRESS`; repeat it to listen on several addresses at once, "+
		"instead of the LISTEN_ADDRESS argument (the forms are those of LISTEN_ADDRESS)")
	flag.Usage = usage
	args, err := parseArgs(flag.CommandLine, os.Args[1:])
	if err != nil {
		// Not reached: flag.CommandLine exits by itself, with 0 after -h
		// and 2 after printing an error and the usage.
		os.Exit(2)
	}
	// With --listen, the only argument is the text; without, the address
	// may come first.
	text := defaultText
	if len(listen) == 0 && len(args) > 0 {
		if err := listen.Set(args[0]); err != nil {
			log.Print(err)
			os.Exit(2)
		}
		args = args[1:]
	}
	switch len(args) {
	case 1:
		text = args[0]
	case 0:
	default:
		log.Printf("too many arguments: %q; want at most LISTEN_ADDRESS and TEXT_TO_SERVE, or TEXT_TO_SERVE after --listen (-h for help)", args[1:])
		os.Exit(2)
	}
	if len(listen) == 0 {
		listen.Set(defaultAddress)
	}
	if err := serve(listen, &opts, text, *restartTimeout); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// parseArgs parses flags and returns the positional arguments, which may
// stand before, between and after the flags. fs.Parse stops at the first
// argument that is not a flag (including - alone) and after --; parseArgs
// takes that argument and parses the rest again, and after -- takes
// everything that is left.
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
		// --, the flags have ended. (No flag of hello takes "--" as its
		// value, so a consumed "--" is always the terminator.)
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// serve listens on addrs and serves text until SIGINT or SIGTERM, which
// drain the server, or SIGHUP, which restarts it: a new hello (the binary
// as it is on disk now, with the same arguments) takes over the listening
// sockets, and this one drains and exits once the new one serves.
func serve(addrs anylisten.AddressList, opts *anylisten.Options, text string, restartTimeout time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	up := anylisten.Upgrader{ReadyTimeout: restartTimeout}
	ln, err := up.ListenAll(ctx, addrs, opts)
	if err != nil {
		return err
	}
	log.Printf("listening on %s", ln.Addr())

	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Hello-Pid", strconv.Itoa(os.Getpid()))
		io.WriteString(w, text)
	})}
	drainer := httpdrain.New(srv)
	// Ready before serving: a predecessor that finds this process not
	// ready in time stops it, and connections it had accepted would go
	// with it; until Serve, they wait in the kernel's queue.
	if err := anylisten.Ready(); err != nil {
		log.Print(err)
	}
	for _, s := range anylisten.Inherited() { // after Ready, which closes dropped hand-overs
		if s.TakenBy == "" && !s.Closed {
			log.Printf("passed socket fd %d (%s) on %v is not listened on", s.FD, s.Name, s.Addr)
		}
	}
	served := make(chan error, 1)
	go func() { served <- drainer.Serve(ln) }()

	for {
		select {
		case err := <-served:
			// Serve returns only when Accept fails for good, and nil
			// when the listener ends by itself (inetd's, after its one
			// connection).
			ln.Close()
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			return nil
		case <-hup:
			pid, err := up.Upgrade(ctx)
			if err != nil {
				log.Printf("restart failed, serving on: %v", err)
				continue
			}
			log.Printf("restarted as pid %d; draining", pid)
		case <-ctx.Done():
			stop() // a second signal kills the process at once
			log.Print("signal received, draining")
		}
		break
	}
	// Stop accepting, serve what was accepted, then exit. Closing the
	// listener removes its UNIX socket file, unless a successor serves it.
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	err = drainer.Drain(dctx)
	<-served
	return err
}

// drainTimeout bounds how long hello waits for its connections to finish
// when it stops.
const drainTimeout = 30 * time.Second

// usage prints the help text to the flag set's output, standard error.
func usage() {
	w := flag.CommandLine.Output()
	indent := func(s string) string { return "        " + strings.ReplaceAll(s, "\n", "\n        ") }
	fmt.Fprintf(w, `Demo server for anylisten: serves TEXT_TO_SERVE as the body of every HTTP request.

Usage: hello [OPTIONS] [LISTEN_ADDRESS] [TEXT_TO_SERVE]
       hello [OPTIONS] --listen ADDRESS [--listen ADDRESS ...] [TEXT_TO_SERVE]

Arguments:
  LISTEN_ADDRESS
%s
        (default %s)
  TEXT_TO_SERVE
        Text to return as the body of every HTTP request, exactly as given
        (default %q)

Options (they may come before, between or after the arguments; -- ends
them; --name and -name are the same):
  -h, --help
        print this help and exit
`, indent(anylisten.AddressHelp), defaultAddress, defaultText)
	flag.PrintDefaults()
}
