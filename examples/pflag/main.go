// Command pflag is a small HTTP server that takes its listen addresses and
// anylisten's options as GNU-style flags, parsed by github.com/spf13/pflag.
//
// Usage:
//
//	pflag [--listen ADDRESS]... [OPTIONS]
//
// --listen may be repeated: the server listens on every address given
// (anylisten.ListenAll), by default on 127.0.0.1:8080. The options are
// anylisten's, with tokio-listener's names: --unix-listen-chmod owner,
// --tcp-keepalive=60000, ... Run pflag --help for all of them.
//
// Every request gets "Hello from NETWORK ADDRESS", naming the listener it
// came in on. The server logs to standard error only, "listening on ADDR"
// once it accepts connections; SIGINT or SIGTERM shuts it down (closing
// the listeners and removing their UNIX socket files, then waiting up to
// five seconds for requests in flight) and exits with status 0. Command-
// line errors exit with status 2, a failure to listen or serve with 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/anylisten/anylisten"
	"github.com/spf13/pflag"
)

const defaultAddress = "127.0.0.1:8080"

// pflagValue adds the Type method that pflag.Value has beyond flag.Value;
// pflag shows the type in --help when the usage names no `NAME`.
type pflagValue struct{ flag.Value }

func (pflagValue) Type() string { return "address" }

func main() {
	log.SetFlags(0)
	log.SetPrefix("pflag: ")

	var (
		addrs anylisten.AddressList
		opts  anylisten.Options
	)
	// anylisten registers its options on a standard flag.FlagSet; pflag
	// takes them over with their names and usage.
	fs := flag.NewFlagSet("anylisten", flag.ContinueOnError)
	opts.RegisterFlags(fs)
	// A UNIX peer the allow lists (--unix-allow-uid, --unix-allow-gid)
	// refuse is logged, never dropped silently.
	opts.UnixRefused = func(r anylisten.Refusal) { log.Print(r) }
	pflag.CommandLine.AddGoFlagSet(fs)
	pflag.Var(pflagValue{&addrs}, "listen",
		"listen on `ADDRESS`; repeat --listen to listen on several (default "+defaultAddress+")\n"+anylisten.AddressHelp)

	// Report a bad flag in one line rather than after the whole help text,
	// which is what pflag's ExitOnError does.
	pflag.CommandLine.Init("pflag", pflag.ContinueOnError)
	pflag.Usage = usage
	if err := pflag.CommandLine.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			os.Exit(0) // pflag has printed the help
		}
		log.Printf("%v (--help for help)", err)
		os.Exit(2)
	}
	if pflag.NArg() > 0 {
		log.Printf("unexpected argument %q; the addresses go after --listen (--help for help)", pflag.Arg(0))
		os.Exit(2)
	}
	if len(addrs) == 0 {
		addrs = anylisten.AddressList{anylisten.MustParseAddress(defaultAddress)}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills the process at once.
	context.AfterFunc(ctx, stop)
	if err := serve(ctx, addrs, &opts); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// serve listens on addrs and serves HTTP until ctx is done.
func serve(ctx context.Context, addrs []anylisten.Address, opts *anylisten.Options) error {
	ln, err := anylisten.ListenAll(ctx, addrs, opts)
	if err != nil {
		return err
	}
	log.Printf("listening on %s", ln.Addr())
	for _, s := range anylisten.Inherited() { // a passed socket no address asks for
		if s.TakenBy == "" && !s.Closed {
			log.Printf("passed socket fd %d (%s) on %v is not listened on", s.FD, s.Name, s.Addr)
		}
	}

	srv := &http.Server{Handler: http.HandlerFunc(hello), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }() // Serve closes ln when it returns

	select {
	case err := <-served:
		// Serve returns by itself only when Accept fails for good; inetd's
		// listener does so with net.ErrClosed once its connection is
		// served, which is a normal end.
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Print("signal received, shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Shutdown closes the listener (removing UNIX socket files) and waits
	// for the requests in flight.
	err = srv.Shutdown(shutdownCtx)
	<-served // http.ErrServerClosed
	return err
}

// hello answers every request with the listener it came in on.
func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local == nil {
		fmt.Fprintln(w, "Hello")
		return
	}
	local = anylisten.SocketPath(local) // the socket file's path, as the listener's Addr says it
	fmt.Fprintf(w, "Hello from %s %s\n", local.Network(), local)
}

// usage prints the help text to standard error.
func usage() {
	fmt.Fprintf(pflag.CommandLine.Output(), `Demo HTTP server for anylisten with spf13/pflag: answers every request with
the address it came in on.

Usage: pflag [--listen ADDRESS]... [OPTIONS]

Options:
%s`, pflag.CommandLine.FlagUsages())
}
