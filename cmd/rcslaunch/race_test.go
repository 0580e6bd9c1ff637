//go:build race

package main

// When the tests run with -race, the binary they drive is built with it too,
// so a data race in a worker or command process fails its test (exit 66).
func init() { raceEnabled = true }
