package anylisten

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileSuffixes holds every Go file of the repository to the layout
// README describes: one file suffix, one build constraint.
func TestFileSuffixes(t *testing.T) {
	goos := map[string]bool{}
	for _, s := range strings.Fields("aix android darwin dragonfly freebsd hurd illumos ios js linux netbsd openbsd plan9 solaris wasip1 windows zos") {
		goos[s] = true
	}
	// Files named for what they use rather than for a platform, with the
	// platforms that have it in their build line.
	capability := map[string]bool{
		"socket_cloexec.go": true, "socket_forklock.go": true,
		"sockfile_link.go": true, "sockfile_nolink.go": true, "sockfile_bsd.go": true,
		"race.go": true, "norace.go": true,
		"peercred_unsupported.go": true, // not one of the seven systems that have peer credentials
		"peercred_xucred.go":      true, // the systems whose peer credentials are a struct xucred
		"httpdrain_h2c_test.go":   true, // http.Protocols: Go 1.24 and later
	}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		name := d.Name()
		line, err := buildLine(path)
		if err != nil {
			return err
		}
		stem := strings.TrimSuffix(strings.TrimSuffix(name, ".go"), "_test")
		suffix := stem[strings.LastIndexByte(stem, '_')+1:]
		if !strings.Contains(stem, "_") {
			suffix = ""
		}
		var want string
		switch {
		case goos[suffix]:
			want = "" // the name is the constraint
		case suffix == "unix":
			want = "unix"
		case strings.HasPrefix(suffix, "unixnon") && goos[suffix[len("unixnon"):]]:
			want = "unix && !" + suffix[len("unixnon"):]
		case strings.HasPrefix(suffix, "nonunixnon") && goos[suffix[len("nonunixnon"):]]:
			// the rest beside X_unix.go and X_GOOS.go (wasm and plan9
			// beside Unix and Windows)
			want = "!unix && !" + suffix[len("nonunixnon"):]
		case strings.HasPrefix(suffix, "non") && (goos[suffix[len("non"):]] || suffix == "nonunix"):
			want = "!" + suffix[len("non"):]
		case capability[name]:
			if line == "" {
				t.Errorf("%s: a file named for a capability needs a build line", path)
			}
			return nil
		}
		if line != want {
			t.Errorf("%s: build line %q, want %q for its name (see README's Layout)", path, line, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// buildLine returns the expression of the //go:build line of the Go file
// at path, or "".
func buildLine(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "package ") {
			break
		}
		if expr, ok := strings.CutPrefix(line, "//go:build "); ok {
			return expr, nil
		}
	}
	return "", sc.Err()
}
