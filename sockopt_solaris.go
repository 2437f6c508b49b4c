package anylisten

import (
	"errors"
	"fmt"
)

func setReusePort(fd int) error {
	return fmt.Errorf("option tcp_reuse_port: SO_REUSEPORT is not available here: %w", errors.ErrUnsupported)
}
