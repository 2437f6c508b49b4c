package sockfile

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// judge's verdicts, which Create (Unix) and Check (Windows) act on: only
// a socket that probes stale goes, and only with RemoveStale.
func TestJudge(t *testing.T) {
	errProbe := errors.New("probe failed")
	o := Options{UnlinkOption: "the option X"}
	withRemove := o
	withRemove.RemoveStale = true
	probed := 0
	for _, tt := range []struct {
		name  string
		kind  string
		live  bool
		err   error
		o     Options
		want  error  // errStale or errChanged, or nil for an *InUseError
		says  string // a part of the message
		probe bool   // whether the socket is probed
	}{
		{name: "regular file", kind: "a regular file", o: withRemove, says: "a regular file is at this path; only a stale socket file is ever removed"},
		{name: "directory", kind: "a directory", o: withRemove, says: "a directory is at this path"},
		{name: "junction", kind: "a junction", o: withRemove, says: "a junction is at this path"},
		{name: "live", live: true, o: withRemove, says: "a live server has this socket open (held by pid 1); it is not taken over", probe: true},
		{name: "stale, no option", o: o, says: "a stale socket file (nobody accepts on it) is in the way; remove it, or set the option X", probe: true},
		{name: "stale", o: withRemove, want: errStale, probe: true},
		{name: "gone", err: errChanged, o: withRemove, want: errChanged, probe: true},
		{name: "probe fails", err: errProbe, o: withRemove, says: "cannot tell whether the socket file at this path is stale: probe failed", probe: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			probed = 0
			err := judge(tt.kind, func() (bool, error) { probed++; return tt.live, tt.err }, func() string { return " (held by pid 1)" }, tt.o)
			if (probed > 0) != tt.probe {
				t.Errorf("probed %d times, want probed: %v", probed, tt.probe)
			}
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("judge = %v, want %v", err, tt.want)
				}
				return
			}
			var iu *InUseError
			if tt.says != "" && strings.HasPrefix(tt.says, "cannot tell") {
				if err == nil || err.Error() != tt.says || !errors.Is(err, errProbe) {
					t.Errorf("judge = %v, want %q wrapping the probe's error", err, tt.says)
				}
				return
			}
			if !errors.As(err, &iu) || !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("judge = %v, want an *InUseError (EADDRINUSE) that says %q", err, tt.says)
			}
		})
	}
}
