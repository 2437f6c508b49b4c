package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// LogFile is a file that a server logs to, and the test reads: a server
// that restarts by starting its successor hands it the file, where a pipe
// would have to stay open in the test for processes it did not start.
type LogFile struct {
	Path string
}

// Read returns what the log holds so far. The test fails at once if the
// file cannot be read.
func (l *LogFile) Read(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(l.Path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// WaitLines polls until the log holds n lines containing text, and
// returns an error if it does not within Timeout.
func (l *LogFile) WaitLines(t testing.TB, text string, n int) error {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for strings.Count(l.Read(t), text) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d lines saying %q within %v", strings.Count(l.Read(t), text), text, Timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
