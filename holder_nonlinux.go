//go:build !linux

package anylisten

import (
	"errors"

	"github.com/anylisten/anylisten/internal/holder"
)

// canKillPort says whether Options.TCPKillPort works here: it needs
// /proc to find the holder of a port.
const canKillPort = false

func terminate(holder.Proc) error { return errors.ErrUnsupported }
