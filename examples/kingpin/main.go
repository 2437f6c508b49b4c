// Command kingpin is a small HTTP server with the command line of a
// Prometheus exporter, parsed by github.com/alecthomas/kingpin/v2: a
// repeatable --web.listen-address that takes every anylisten address, and
// anylisten's options, which reach kingpin through a standard
// flag.FlagSet.
//
// Usage:
//
//	kingpin [--web.listen-address=ADDRESS]... [OPTIONS]
//
// --web.listen-address may be repeated: the server listens on every
// address given (anylisten.ListenAll), by default on 127.0.0.1:9100. The
// options are anylisten's, with tokio-listener's names:
// --unix-listen-chmod=owner, --tcp-keepalive=60000, ... Run kingpin --help
// for all of them.
//
// kingpin reads an argument that starts with @ as a file of arguments, so
// "--web.listen-address @admin" fails with "expected argument for flag"
// (or, where a file named admin exists, reads it). Write the abstract
// socket @admin as --web.listen-address=@admin or as
// --web.listen-address unix-abstract:admin.
//
// Every request gets "Hello from ADDRESS", naming the listener it came in
// on. The server logs to standard error only, "listening on ADDR" once it
// accepts connections; SIGINT or SIGTERM shuts it down (closing the
// listeners and removing their UNIX socket files, then waiting up to five
// seconds for requests in flight) and exits with status 0. Command-line
// errors exit with status 2, a failure to listen or serve with 1.
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

	"github.com/alecthomas/kingpin/v2"
	"github.com/anylisten/anylisten"
)

const defaultAddress = "127.0.0.1:9100"

// config is what the command line sets.
type config struct {
	addrs anylisten.AddressList
	opts  anylisten.Options
}

// newApp returns the kingpin application whose Parse fills c.
func newApp(c *config) *kingpin.Application {
	app := kingpin.New("kingpin", "Demo HTTP server for anylisten with kingpin: answers every request with the address it came in on.")
	app.HelpFlag.Short('h')

	// anylisten registers its options on a standard flag.FlagSet; each
	// becomes a kingpin flag with the same name, usage and value.
	fs := flag.NewFlagSet("anylisten", flag.ContinueOnError)
	c.opts.RegisterFlags(fs)
	// A UNIX peer the allow lists (--unix-allow-uid, --unix-allow-gid)
	// refuse is logged, never dropped silently.
	c.opts.UnixRefused = func(r anylisten.Refusal) { log.Print(r) }
	addGoFlags(app, fs)

	// kingpin sets the default only when the flag is not given, so that
	// the first --web.listen-address replaces it.
	app.Flag("web.listen-address",
		"Address on which to expose the server; repeat it to listen on several. "+
			"Write an abstract socket --web.listen-address=@NAME or unix-abstract:NAME: "+
			"kingpin reads a separate @NAME as a file of arguments.\n"+anylisten.AddressHelp).
		Default(defaultAddress).SetValue(repeatable{&c.addrs})
	return app
}

// addGoFlags adds every flag of fs to app, with its name, usage, the
// `NAME` of its value as placeholder, and its flag.Value, which is a
// kingpin.Value. kingpin takes a value with IsBoolFlag, as the standard
// bool flags have, as a boolean flag, also as --no-NAME.
func addGoFlags(app *kingpin.Application, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		placeholder, usage := flag.UnquoteUsage(f)
		kf := app.Flag(f.Name, usage)
		if placeholder != "" {
			kf.PlaceHolder(placeholder)
		}
		kf.SetValue(f.Value)
	})
}

// repeatable lets a kingpin flag be given more than once: kingpin asks a
// flag's value for IsCumulative. AddressList.Set appends.
type repeatable struct{ flag.Value }

func (repeatable) IsCumulative() bool { return true }

func main() {
	log.SetFlags(0)
	log.SetPrefix("kingpin: ")

	var c config
	if _, err := newApp(&c).Parse(os.Args[1:]); err != nil {
		log.Printf("%v (--help for help)", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := anylisten.ListenAll(ctx, c.addrs, &c.opts)
	if err != nil {
		log.Print(err)
		os.Exit(1)
	}
	log.Printf("listening on %s", ln.Addr())
	for _, s := range anylisten.Inherited() { // a passed socket no address asks for
		if s.TakenBy == "" && !s.Closed {
			log.Printf("passed socket fd %d (%s) on %v is not listened on", s.FD, s.Name, s.Addr)
		}
	}

	srv := &http.Server{Handler: http.HandlerFunc(hello), ReadHeaderTimeout: 10 * time.Second}
	shutdown := make(chan error, 1)
	go func() {
		<-ctx.Done()
		log.Print("signal received, shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Shutdown closes the listener (removing UNIX socket files) and
		// waits for the requests in flight.
		shutdown <- srv.Shutdown(shutdownCtx)
	}()
	err = srv.Serve(ln)
	switch {
	case errors.Is(err, http.ErrServerClosed):
		err = <-shutdown
	case errors.Is(err, net.ErrClosed):
		// inetd's listener ends with net.ErrClosed once its one
		// connection is served, which is a normal end.
		err = nil
	}
	if err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// hello answers every request with the address of the listener it came in
// on.
func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	fmt.Fprintf(w, "Hello from %v\n", anylisten.SocketPath(local))
}
