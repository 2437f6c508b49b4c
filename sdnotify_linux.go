package anylisten

import (
	"errors"
	"os"
	"strconv"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifySystemdReady sends READY=1 and MAINPID to systemd's NOTIFY_SOCKET,
// if there is one (sd_notify).
func notifySystemdReady() error {
	_, err := daemon.SdNotify(false, "MAINPID="+strconv.Itoa(os.Getpid())+"\n"+daemon.SdNotifyReady)
	if err != nil {
		return errors.New("anylisten: telling systemd it is ready: " + err.Error())
	}
	return nil
}
