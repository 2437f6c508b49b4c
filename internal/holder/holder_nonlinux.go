//go:build !linux

package holder

import "net"

func inetHolders(bool, *net.TCPAddr, bool) Holders { return Holders{} }

func unixHolders(func(string) bool) Holders { return Holders{} }

func (p Proc) stillHolds() bool { return false }
