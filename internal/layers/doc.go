// Package layers holds no code, only the test of which way rcslaunch's
// imports point: cmd/ wires everything; the public worker package uses the
// domain packages; the domain packages (config, kaleyra, store, limits, ...)
// import nothing of the worker nor of each other's concerns, and the public
// producer package enqueue stays free of the worker's and the environment's
// dependencies. The rules and the reason for each are in layers_test.go.
package layers
