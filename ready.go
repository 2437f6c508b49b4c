package anylisten

import (
	"errors"
	"os"
	"strconv"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Ready tells whoever started this process that it now serves: the
// process that handed it its listeners (Upgrader.Upgrade waits for this),
// and systemd, through sd_notify, with READY=1 and MAINPID, so that a
// Type=notify service follows a successor (which needs NotifyAccess=all).
// Call it once every Listen is done, best just before serving: connections
// wait in the kernel's queue meanwhile, and a successor that an Upgrader
// gives up on has then accepted none. After it, this process owns the
// UNIX socket files it took over, and closes handed-over sockets it did
// not take. Where
// nobody waits (no Upgrader started this process, no NOTIFY_SOCKET), it
// does nothing. Calling it again does nothing more than tell systemd again.
func Ready() error {
	err := readyToParent()
	_, nerr := daemon.SdNotify(false, "MAINPID="+strconv.Itoa(os.Getpid())+"\n"+daemon.SdNotifyReady)
	if nerr != nil {
		nerr = errors.New("anylisten: telling systemd it is ready: " + nerr.Error())
	}
	return errors.Join(err, nerr)
}
