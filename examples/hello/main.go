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
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/anylisten/anylisten"
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
	if err := serve(listen, &opts, text); err != nil {
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

// serve listens on addrs and serves text until SIGINT or SIGTERM.
func serve(addrs anylisten.AddressList, opts *anylisten.Options, text string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := anylisten.ListenAll(ctx, addrs, opts)
	if err != nil {
		return err
	}
	log.Printf("listening on %s", ln.Addr())

	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, text)
	})
	served := make(chan error, 1)
	go func() { served <- http.Serve(ln, handler) }()

	select {
	case err := <-served:
		// http.Serve returns only when Accept fails for good. A listener
		// that ends by itself (inetd's, after its one connection) reports
		// net.ErrClosed: that is a normal end.
		ln.Close()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stop() // a second signal kills the process at once
	log.Print("signal received, closing the listener")
	// Closing the listener makes http.Serve return, and removes the UNIX
	// socket file. Connections in flight end with the process.
	if err := ln.Close(); err != nil {
		return err
	}
	if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

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
