//go:build race

package stream_test

// raceEnabled scales the load tests down: the race detector makes them
// several times slower on a shared machine.
const raceEnabled = true
