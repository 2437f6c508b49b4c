package anylisten

import (
	"os"

	"github.com/anylisten/anylisten/internal/holder"
	"golang.org/x/sys/unix"
)

// canKillPort says whether Options.TCPKillPort works here.
const canKillPort = true

// terminate sends SIGTERM to p, through a pidfd where the kernel has them
// (Linux 5.3), so that the signal goes to the process that was found to
// hold the socket and not to another one that got its pid meanwhile. A
// process that is gone already is no error.
func terminate(p holder.Proc) error {
	fd, err := unix.PidfdOpen(p.PID, 0)
	switch err {
	case nil:
	case unix.ESRCH:
		return nil
	case unix.ENOSYS:
		if err := unix.Kill(p.PID, unix.SIGTERM); err != nil && err != unix.ESRCH {
			return os.NewSyscallError("kill", err)
		}
		return nil
	default:
		return os.NewSyscallError("pidfd_open", err)
	}
	defer unix.Close(fd)
	if !p.StillHolds() {
		return nil // it has let go of the socket, or exited and its pid is another's now
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0); err != nil && err != unix.ESRCH {
		return os.NewSyscallError("pidfd_send_signal", err)
	}
	return nil
}
