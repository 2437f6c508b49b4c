//go:build !race

package testenv

// raceEnabled says that this binary was built with -race.
const raceEnabled = false
