package anylisten

import (
	"errors"
	"net"
)

// UnixgramConn is the net.PacketConn ListenPacket returns for a UNIX
// socket path: a datagram socket whose Close also removes its socket file,
// which package net never does for one. It embeds the kernel's
// *net.UnixConn, whose methods (ReadFromUnix, WriteToUnix, ReadMsgUnix,
// SetReadBuffer, SyscallConn, ...) it keeps; it is the one wrapper
// ListenPacket returns, and NetConn returns the *net.UnixConn itself, for
// code that needs that type.
//
// Its socket file follows the rules of UnixListener's: Close removes it
// only while it is the file this socket bound (or took over from a
// predecessor, see Ready), and never another file that took its place.
type UnixgramConn struct {
	*net.UnixConn

	addr *net.UnixAddr // the socket path
	sf   socketFile
}

// LocalAddr returns the socket path as given to ListenPacket. The
// kernel's name for the socket, which its peers see as the address its
// datagrams come from, is the path too (its directory's physical path and
// the name) where ListenPacket could bind it there safely: on Linux, where
// no other user may write the directory or move it or a directory above
// it (such as /run/APP), and a mode is given if an owner or group is. Elsewhere the socket is bound in a private directory
// and moved into place, as a stream socket is, and the kernel keeps that
// name, DIR/.anylisten-XXXXXXXX/NAME (or /proc/self/fd/N/NAME in a
// directory other users may write): a peer that answers to the address a
// datagram came from then fails (ENOENT), and one that accepts only
// datagrams from the address it sent to (socat's UNIX-SENDTO) drops the
// answers; a connected peer (net.DialUnix, socat's UNIX-CONNECT) gets
// them. SocketPath maps such a name back to the path.
func (c *UnixgramConn) LocalAddr() net.Addr { return c.addr }

// NetConn returns the *net.UnixConn c embeds.
func (c *UnixgramConn) NetConn() net.Conn {
	if c == nil {
		return nil
	}
	return c.UnixConn
}

// Close closes the socket and removes its socket file if it is still the
// file this socket bound and SetUnlinkOnClose has not turned that off.
func (c *UnixgramConn) Close() error {
	err := c.sf.close()
	return errors.Join(c.UnixConn.Close(), err)
}

// SetUnlinkOnClose sets whether Close removes the socket file. It is true
// for a socket ListenPacket bound to a path, and false after an Upgrade
// handed the socket over.
func (c *UnixgramConn) SetUnlinkOnClose(unlink bool) { c.sf.setUnlink(unlink) }

func (c *UnixgramConn) socketFile() *socketFile { return &c.sf }
