//go:build !unix

package anylisten

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

func (u *Upgrader) upgrade(context.Context) (int, error) {
	return 0, fmt.Errorf("anylisten: handing listeners to a successor is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
