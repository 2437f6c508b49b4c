//go:build unix

package anylisten

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/anylisten/anylisten/internal/sockfile"
	"golang.org/x/sys/unix"
)

// The successor's side of the hand-over (see handover.go).

// predecessor is the process that handed this one its sockets, if one did.
var predecessor struct {
	once sync.Once
	mu   sync.Mutex
	fd   int  // the ready socket, or -1 once used (or if there is none)
	pipe bool // a pipe: a predecessor that answers nothing
	// unlink are the passed fds whose socket files the predecessor owned
	// (it had bound them, or owned them in turn), and so passes on, with
	// the files' identities; a file it did not own (systemd's), and any
	// other file than the one identified, is never removed. Like fd and
	// pipe, it is set once, by readyState.
	unlink map[int]fileID
	// toOwn are the UNIX listeners taken over, whose socket files this
	// process removes on Close once the predecessor said go.
	toOwn []ownedFile
	went  bool // the predecessor said go
	// The lock order is predecessor.mu, then inherited.mu.
}

type ownedFile struct {
	sock any // a *UnixListener or *UnixgramConn
	path string
	id   fileID
}

// fileID is a socket file's identity (sockfile.File.ID).
type fileID struct{ dev, ino uint64 }

// readyMu makes Ready calls wait for one another, without holding up a
// Listen while Ready waits for the predecessor.
var readyMu sync.Mutex

func init() { closeOnExecReadyFD() }

// closeOnExecReadyFD makes the ready socket close-on-exec at start, as the
// sockets before it are, so that no child inherits it.
func closeOnExecReadyFD() {
	if fd := readyFD(); fd >= 0 {
		unix.CloseOnExec(fd)
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			readyAtStart = readyFile{fd, fileID{uint64(st.Dev), uint64(st.Ino)}}
		}
	}
}

// readyFile is the ready fd and the file it was when the package
// initialised.
type readyFile struct {
	fd int
	id fileID
}

// readyAtStart is the ready fd the environment named when the package
// initialised, or fd -1. Only that file is ever written to: if the
// program closed the fd and the number went to another file, there is no
// ready socket.
var readyAtStart = readyFile{fd: -1}

// readyStill returns readyAtStart's fd if it is still that file, else -1.
func readyStill() int {
	if readyAtStart.fd < 0 {
		return -1
	}
	var st unix.Stat_t
	if unix.Fstat(readyAtStart.fd, &st) != nil || uint64(st.Dev) != readyAtStart.id.dev || uint64(st.Ino) != readyAtStart.id.ino {
		return -1
	}
	return readyAtStart.fd
}

// readyFD returns the ready socket (or pipe) fd that the environment names,
// or -1 where it names none that is meant for this process: LISTEN_PID must
// be this process, and the fd the one right after the sockets.
func readyFD() int {
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 1 || n > maxListenFDs || os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return -1
	}
	fd, err := strconv.Atoi(os.Getenv(readyFDVar))
	var st unix.Stat_t
	if err != nil || fd != listenFDsStart+n || unix.Fstat(fd, &st) != nil {
		return -1
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK, unix.S_IFIFO:
		return fd
	}
	return -1
}

// readyState reads the ready fd once, before any Listen can change the
// environment.
func readyState() {
	predecessor.once.Do(func() {
		predecessor.fd = readyStill()
		if predecessor.fd >= 0 {
			var st unix.Stat_t
			unix.Fstat(predecessor.fd, &st)
			predecessor.pipe = st.Mode&unix.S_IFMT == unix.S_IFIFO
			predecessor.unlink = parseUnlinkFDs(os.Getenv(unlinkFDsVar))
		}
	})
}

// parseUnlinkFDs parses ANYLISTEN_UNLINK_FDS: FD:DEV:INO, separated by
// commas. What does not parse is left out.
func parseUnlinkFDs(s string) map[int]fileID {
	m := map[int]fileID{}
	for _, v := range strings.Split(s, ",") {
		parts := strings.Split(v, ":")
		if len(parts) != 3 {
			continue
		}
		fd, err1 := strconv.Atoi(parts[0])
		dev, err2 := strconv.ParseUint(parts[1], 10, 64)
		ino, err3 := strconv.ParseUint(parts[2], 10, 64)
		if err1 == nil && err2 == nil && err3 == nil {
			m[fd] = fileID{dev, ino}
		}
	}
	return m
}

// formatUnlinkFD is one entry of ANYLISTEN_UNLINK_FDS.
func formatUnlinkFD(fd int, id fileID) string {
	return strconv.Itoa(fd) + ":" + strconv.FormatUint(id.dev, 10) + ":" + strconv.FormatUint(id.ino, 10)
}

// takeHandedOver takes the sockets a predecessor handed over for a to
// its Listen, if there are any (handedOverLocked).
func takeHandedOver(e *sdEnv, a Address, o *Options) (net.Listener, error) {
	readyState()
	if e.names == nil {
		return nil, nil
	}
	inherited.mu.Lock()
	pick := handedOverLocked(e, a, false)
	var ln net.Listener
	var err error
	if pick != nil {
		if err = passedRights(a, o); err == nil {
			ln, err = claimLocked(pick, a, o)
		}
	}
	inherited.mu.Unlock()
	if ln != nil {
		passFile(pick, a, ln)
	}
	return ln, err
}

// takeHandedOverPacket takes the datagram socket a predecessor handed
// over for a to its ListenPacket, if there is one.
func takeHandedOverPacket(e *sdEnv, a Address, o *Options) (net.PacketConn, error) {
	readyState()
	if e.names == nil {
		return nil, nil
	}
	inherited.mu.Lock()
	pick := handedOverLocked(e, a, true)
	var pc net.PacketConn
	var err error
	if len(pick) > 0 {
		if err = passedRights(a, o); err == nil {
			if pc, err = claimPacketLocked(pick[0], a, o); err == nil {
				pc = packetConnAt(pc, a)
			}
		}
	}
	inherited.mu.Unlock()
	if pc != nil {
		passFile(pick, a, pc)
	}
	return pc, err
}

// passFile makes the socket file of a UNIX path that the predecessor
// owned the file of s, the one socket in pick taken over for a. The
// predecessor removes its socket file when it stops for good; its
// successor does once the predecessor said go, and not before: a
// successor that fails must not take the file from under the
// predecessor, which serves on.
func passFile(pick []sdFD, a Address, s any) {
	id, owned := predecessor.unlink[pick[0].fd]
	if !owned || len(pick) != 1 || a.kind != KindUnix {
		return
	}
	predecessor.mu.Lock()
	defer predecessor.mu.Unlock()
	if predecessor.went {
		ownSocketFile(s, a.str, id)
	} else {
		predecessor.toOwn = append(predecessor.toOwn, ownedFile{s, a.str, id})
	}
}

// handedOverLocked returns the sockets a predecessor handed over for a
// that Listen (packet false: stream and seqpacket sockets) or ListenPacket
// (packet true: datagram sockets) takes: those named handoverName(a, k)
// and of that type, for the lowest k whose sockets are all still there to
// take; nil if there are none. inherited.mu is held.
func handedOverLocked(e *sdEnv, a Address, packet bool) []sdFD {
	fds, _ := e.fds(false)
	for k := 1; ; k++ {
		name := handoverName(a, k)
		var pick []sdFD
		named, taken := false, false
		for _, f := range fds {
			if f.name != name {
				continue
			}
			named = true
			if servesAs(f.fd, packet) {
				pick = append(pick, f)
				taken = taken || isClaimed(f.fd)
			}
		}
		switch {
		case !named:
			return nil
		case len(pick) > 0 && !taken:
			return pick
		}
	}
}

// readyToPredecessor tells the predecessor this process is ready, if one
// waits, and waits for its answer. On "go", this process owns the socket
// files it took over, and closes the sockets it was handed but did not
// take, removing their socket files.
func readyToPredecessor() error {
	readyState()
	readyMu.Lock()
	defer readyMu.Unlock()
	predecessor.mu.Lock()
	fd, pipe := predecessor.fd, predecessor.pipe
	predecessor.fd = -1
	predecessor.mu.Unlock()
	if fd < 0 || readyStill() != fd {
		return nil // none, or the program closed it and the number is another file's now
	}
	os.Unsetenv(readyFDVar)
	os.Unsetenv(unlinkFDsVar)
	f := os.NewFile(uintptr(fd), "ready")
	defer f.Close()
	if _, err := f.WriteString(readyMessage); err != nil {
		return fmt.Errorf("anylisten: telling the predecessor it is ready: %w", err)
	}
	if !pipe {
		b := make([]byte, len(goMessage))
		if _, err := io.ReadFull(f, b); err != nil || string(b) != goMessage {
			why := fmt.Sprintf("it answered %q", b)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				why = "it closed the ready socket without answering (it gave up waiting, or it exited)"
			} else if err != nil {
				why = err.Error()
			}
			return fmt.Errorf("anylisten: the predecessor did not accept the ready: %s; "+
				"this process takes nothing over and should stop", why)
		}
	}
	predecessor.mu.Lock()
	defer predecessor.mu.Unlock()
	predecessor.went = true
	for _, o := range predecessor.toOwn {
		ownSocketFile(o.sock, o.path, o.id)
	}
	predecessor.toOwn = nil
	closeUntaken()
	return nil
}

// closedAfterReady marks a handed-over socket that Ready closed, since no
// Listen took it.
const closedAfterReady = "nothing: closed after Ready"

// closeUntaken closes the handed-over sockets that no Listen took, and
// removes the socket files of those that were UNIX paths.
func closeUntaken() {
	e := inheritedEnv()
	fds, err := e.fds(false)
	if err != nil {
		return
	}
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	for _, f := range fds {
		if _, taken := inherited.claimed[f.fd]; taken || stillPassed(f.fd) != nil {
			continue // a number the program may use for its own file now
		}
		id, owned := predecessor.unlink[f.fd]
		if a, err := parseHandoverName(f.name); err == nil && a.kind == KindUnix && owned {
			if sf, err := sockfile.AdoptSame(a.str, id.dev, id.ino); err == nil {
				sf.Remove()
				sf.Close()
			}
		}
		unix.Close(f.fd)
		inherited.claimed[f.fd] = closedAfterReady
	}
}

// ownSocketFile makes Close of the UNIX socket s (a listener or a datagram
// socket) remove the socket file at path, as if s had bound it, provided
// it is the file id.
func ownSocketFile(s any, path string, id fileID) {
	fo, ok := s.(fileOwner)
	if !ok {
		return
	}
	if f, err := sockfile.AdoptSame(path, id.dev, id.ino); err == nil {
		fo.socketFile().takeFile(f)
	}
}

// The predecessor's side of the hand-over.

// handover is what a predecessor passes to its successor.
type handover struct {
	files  []*os.File // the sockets, then the successor's end of the ready socket
	names  []string
	unlink []string // ANYLISTEN_UNLINK_FDS entries: the files the successor is to own
	ready  *os.File // the predecessor's end of the ready socket
	// marked are the socket files of the UNIX sockets whose Close leaves
	// the file until end says whether the successor took over.
	marked []*socketFile
}

// newHandover duplicates the sockets of every listener in handed that is
// still open, names them, and makes the ready socket. It returns the
// listeners it skipped because they were closed.
func newHandover(handed []handedListener) (*handover, []int, error) {
	h := &handover{}
	fail := func(err error) (*handover, []int, error) {
		h.close()
		return nil, nil, err
	}
	var closed []int
	seen := map[string]int{}
	for i, hl := range handed {
		socks, err := h.sockets(hl.sock())
		if errors.Is(err, net.ErrClosed) && len(socks) == 0 {
			closed = append(closed, i)
			continue
		}
		for _, sk := range socks {
			if sk.owned {
				h.unlink = append(h.unlink, formatUnlinkFD(listenFDsStart+len(h.files), sk.id))
			}
			h.files = append(h.files, sk.f)
		}
		if err != nil {
			return fail(fmt.Errorf("anylisten: cannot hand over %s: %w", hl.addr, err))
		}
		key := hl.key()
		seen[key]++
		name := handoverName(hl.addr, seen[key])
		for range socks {
			h.names = append(h.names, name)
		}
	}
	if len(h.files) == 0 {
		return fail(errors.New("anylisten: Upgrade with every listener closed; nothing to hand over"))
	}
	pair, err := socketpairCloexec()
	if err != nil {
		return fail(err)
	}
	h.ready = os.NewFile(uintptr(pair[0]), "ready")
	h.files = append(h.files, os.NewFile(uintptr(pair[1]), "ready"))
	return h, closed, nil
}

// env returns env with the protocol's variables set for h, and any it
// had removed. LISTEN_PID is left to the successor's starter.
func (h *handover) env(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !isListenVar(name) {
			out = append(out, kv)
		}
	}
	n := len(h.files) - 1
	return append(out,
		"LISTEN_FDS="+strconv.Itoa(n),
		"LISTEN_FDNAMES="+strings.Join(h.names, ":"),
		readyFDVar+"="+strconv.Itoa(listenFDsStart+n),
		unlinkFDsVar+"="+strings.Join(h.unlink, ","))
}

func isListenVar(name string) bool {
	for _, v := range listenVars {
		if name == v {
			return true
		}
	}
	return false
}

// started closes the successor's copies once it has been started.
func (h *handover) started() {
	for _, f := range h.files {
		f.Close()
	}
	h.files = nil
}

// close closes everything h holds, and tells the marked listeners whether
// the successor took over (end was called) or not.
func (h *handover) close() {
	h.started()
	if h.ready != nil {
		h.ready.Close()
	}
	h.end(false)
}

// end tells the marked listeners whether the successor took their sockets
// over, and so their socket files.
func (h *handover) end(handed bool) {
	for _, sf := range h.marked {
		sf.endHandover(handed)
	}
	h.marked = nil
}

// readyWord waits for the successor's "ready", and sends the result on c:
// nil, or why it never came.
func (h *handover) readyWord(c chan<- error) {
	b := make([]byte, len(readyMessage))
	_, err := io.ReadFull(h.ready, b)
	if err == nil && string(b) != readyMessage {
		err = fmt.Errorf("it said %q", b)
	}
	c <- err
}

// accept answers "go" to a successor that said ready in time.
func (h *handover) accept() error {
	_, err := h.ready.WriteString(goMessage)
	return err
}

// handedSocket is a duplicate of a listener's socket, and the identity of
// its socket file if the listener owns it (removes it on Close).
type handedSocket struct {
	f     *os.File
	owned bool
	id    fileID
}

// sockets returns duplicates of the sockets of sock (a net.Listener or a
// net.PacketConn), in order, and marks the UNIX sockets among them as
// being handed over. For a closed one the error wraps net.ErrClosed.
func (h *handover) sockets(sock any) ([]handedSocket, error) {
	name := ""
	switch s := sock.(type) {
	case net.Listener:
		name = s.Addr().String()
	case net.PacketConn:
		name = s.LocalAddr().String()
	}
	switch l := sock.(type) {
	case *multiListener:
		var socks []handedSocket
		for _, c := range l.listeners() {
			ss, err := h.sockets(c)
			if errors.Is(err, net.ErrClosed) && len(ss) == 0 {
				continue // a member that ended by itself
			}
			socks = append(socks, ss...)
			if err != nil {
				return socks, err
			}
		}
		if len(socks) == 0 {
			return nil, net.ErrClosed
		}
		return socks, nil
	case *oneConnListener:
		return nil, errors.New("a single inherited connection cannot be handed over")
	case fileOwner:
		// Marked before its fd is taken: a Close from now on leaves the
		// socket file, which may be the successor's.
		sf := l.socketFile()
		open, owned, dev, ino := sf.startHandover()
		if !open {
			return nil, net.ErrClosed
		}
		h.marked = append(h.marked, sf)
		nfd, err := dupSocket(l.(syscall.Conn))
		if err != nil {
			return nil, err
		}
		return []handedSocket{{os.NewFile(uintptr(nfd), name), owned, fileID{dev, ino}}}, nil
	case syscall.Conn:
		nfd, err := dupSocket(l)
		if err != nil {
			return nil, err
		}
		return []handedSocket{{f: os.NewFile(uintptr(nfd), name)}}, nil
	}
	return nil, fmt.Errorf("a %T cannot be handed over", sock)
}
