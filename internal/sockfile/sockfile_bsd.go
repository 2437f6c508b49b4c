//go:build dragonfly || freebsd || netbsd || openbsd

package sockfile

// renameNoReplace renames the file from in fromDir to to in toDir, and
// fails with EEXIST if a file is at to: these systems have no rename that
// cannot replace, so it links and unlinks.
func renameNoReplace(fromDir int, from string, toDir int, to string) error {
	return linkNoReplace(fromDir, from, toDir, to)
}
