// Command config is an echo server whose listening configuration comes
// from a TOML or JSON file: the Go twin of tokio-listener's serde_echo
// example.
//
// Usage:
//
//	config FILE
//
// FILE ends in .toml or .json. It holds addr, one listen address, or
// addrs, a list of them (both may be given: the server listens on every
// address), and any of anylisten's options under their own keys:
//
//	addrs = ["127.0.0.1:7000", "./echo.sock"]
//	unix_listen_unlink = true
//	unix_listen_chmod = "group"
//	tcp_keepalive = "60000:3:5000"
//
// A key the server does not know is an error, so a misspelt option does
// not go unnoticed.
//
// The server sends every byte it receives on a connection back, until the
// client closes its sending side, and serves connections concurrently. It
// never writes to standard output, which is the connection in inetd mode;
// it logs to standard error, "listening on ADDR" once it accepts
// connections. SIGINT or SIGTERM closes the listeners (removing their UNIX
// socket files) and the open connections, and exits with status 0, as does
// the end of inetd's one connection. A bad command line or config file
// exits with status 2, a failure to listen with 1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/BurntSushi/toml"
	"github.com/anylisten/anylisten"
)

// Config is the content of a config file: where to listen, and how.
type Config struct {
	// Addr is one listen address, like "127.0.0.1:7000" or "./echo.sock".
	Addr anylisten.Address `json:"addr" toml:"addr"`
	// Addrs is a list of listen addresses: ["127.0.0.1:7000", "./echo.sock"].
	Addrs anylisten.AddressList `json:"addrs" toml:"addrs"`
	// Options are anylisten's options. Embedded without a tag, their keys
	// (unix_listen_chmod, tcp_keepalive, ...) stand at the top level of the
	// file, beside addr: encoding/json and BurntSushi/toml both inline the
	// fields of an untagged embedded struct.
	anylisten.Options
}

// addresses returns addr followed by addrs.
func (c *Config) addresses() []anylisten.Address {
	var all []anylisten.Address
	if c.Addr.Kind() != 0 {
		all = append(all, c.Addr)
	}
	return append(all, c.Addrs...)
}

// loadConfig reads the config file at path, TOML or JSON by its extension.
// Errors name the file; a value the library cannot parse is quoted by the
// library's own message, and an unknown key is an error.
func loadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".toml":
		md, err := toml.Decode(string(data), &c)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if keys := md.Undecoded(); len(keys) > 0 {
			return nil, fmt.Errorf("%s: unknown key %q; want addr, addrs or an option key like unix_listen_chmod", path, keys[0].String())
		}
	case ".json":
		d := json.NewDecoder(bytes.NewReader(data))
		d.DisallowUnknownFields()
		if err := d.Decode(&c); err != nil {
			return nil, fmt.Errorf("%s: %w", path, jsonError(data, err))
		}
		end := d.InputOffset()
		if _, err := d.Token(); err != io.EOF {
			rest := bytes.TrimLeft(data[end:], " \t\r\n")
			return nil, fmt.Errorf("%s: %s: more data after the JSON object", path, position(data, int64(len(data)-len(rest))))
		}
	default:
		return nil, fmt.Errorf("%s: unknown config file type %q; want .toml or .json", path, ext)
	}
	if len(c.addresses()) == 0 {
		return nil, fmt.Errorf(`%s: no listen address; set addr = "ADDRESS" or addrs = ["ADDRESS", ...]`, path)
	}
	return &c, nil
}

// jsonError adds the line and column to the errors of encoding/json that
// know where they occurred: after reading Offset bytes, so at the byte
// before. (The error of an UnmarshalText method, such as that of an
// address that does not parse, knows no position, but quotes the value.)
func jsonError(data []byte, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("%s: %w", position(data, syntax.Offset-1), err)
	case errors.As(err, &typ):
		return fmt.Errorf("%s: %w", position(data, typ.Offset-1), err)
	}
	return err
}

// position returns "line L, column C" of the byte at index i of data,
// both counted from 1.
func position(data []byte, i int64) string {
	before := data[:min(max(i, 0), int64(len(data)))]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return "line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col)
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("config: ")
	flag.Usage = usage
	flag.Parse()
	if flag.NArg() != 1 {
		log.Printf("want one argument, the config file; got %d (-h for help)", flag.NArg())
		os.Exit(2)
	}
	cfg, err := loadConfig(flag.Arg(0))
	if err != nil {
		log.Print(err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills the process at once.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, cfg); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// run listens on every address of cfg and echoes until ctx is done.
func run(ctx context.Context, cfg *Config) error {
	// A UNIX peer the allow lists (unix_allow_uid, unix_allow_gid) refuse
	// is logged, never dropped silently.
	cfg.Options.UnixRefused = func(r anylisten.Refusal) { log.Print(r) }
	ln, err := anylisten.ListenAll(ctx, cfg.addresses(), &cfg.Options)
	if err != nil {
		return err
	}
	log.Printf("listening on %s", ln.Addr())
	for _, s := range anylisten.Inherited() { // a passed socket no address asks for
		if s.TakenBy == "" && !s.Closed {
			log.Printf("passed socket fd %d (%s) on %v is not listened on", s.FD, s.Name, s.Addr)
		}
	}
	return serve(ctx, ln)
}

// serve echoes on every connection ln accepts, each in its own goroutine,
// until ctx is done or ln ends by itself (inetd's listener, once its one
// connection is closed). When ctx is done, it closes ln and the open
// connections; it returns once every connection's goroutine has ended.
// It closes ln in any case.
func serve(ctx context.Context, ln net.Listener) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = make(map[net.Conn]struct{})
	)
	accepted := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				accepted <- err
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				echo(c)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()

	select {
	case err := <-accepted:
		// The listener ended by itself; let the connections finish.
		ln.Close()
		wg.Wait()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("accept: %w", err)
	case <-ctx.Done():
	}
	log.Print("signal received, closing the listener and the connections")
	err := ln.Close() // removes the UNIX socket files
	<-accepted        // no connection is added after this
	mu.Lock()
	for c := range conns {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
	return err
}

// echo copies what c receives back to c until the client closes its
// sending side, then closes c.
func echo(c net.Conn) {
	defer c.Close()
	if _, err := io.Copy(c, c); err != nil && !errors.Is(err, net.ErrClosed) {
		log.Printf("connection from %s: %v", c.RemoteAddr(), err)
	}
}

// usage prints the help text to standard error.
func usage() {
	fmt.Fprint(flag.CommandLine.Output(), `Echo server for anylisten: sends back every byte it receives, on every
connection, on the addresses its config file gives.

Usage: config FILE

FILE is a TOML (.toml) or JSON (.json) file with these keys:
  addr      one listen address, like "127.0.0.1:7000" or "./echo.sock"
  addrs     a list of them, like ["127.0.0.1:7000", "./echo.sock"]
  unix_listen_unlink, unix_listen_chmod, unix_listen_uid, unix_listen_gid,
  sd_accept_ignore_environment, tcp_keepalive, tcp_reuse_port,
  recv_buffer_size, send_buffer_size, tcp_only_v6, tcp_listen_backlog,
  tcp_kill_port, npipe_security_descriptor
            anylisten's options; unix_listen_chmod ("group"),
            tcp_keepalive ("60000:3:5000") and npipe_security_descriptor
            (SDDL, "D:P(A;;GA;;;OW)") are strings

`)
	fmt.Fprintln(flag.CommandLine.Output(), anylisten.AddressHelp)
}
