package worker

// growStackBy is the frame growStack puts on the stack: the runtime then
// doubles a new goroutine's stack to 32 KiB, enough for a launch (a JSON
// decode, Redis scripts and an HTTP call, measured at 16 to 32 KiB deep).
// At the default concurrency that is 320 KiB of stacks; at 400, 12.5 MiB.
const growStackBy = 16 << 10

// growStack grows the calling goroutine's stack while it is still shallow.
// asynq runs each task on a new goroutine, whose stack starts at the
// process's average (the runtime's adaptive start, which the many shallow
// goroutines keep small) and grew by doubling deep inside the launch, each
// time copying and adjusting every frame above: 5% of a worker's CPU in
// rcslaunch bench, 2% (this call included) with one early growth over a few
// frames.
//
//go:noinline
func growStack() {
	var buf [growStackBy]byte
	if growStackNever {
		touchStack(&buf)
	}
}

// growStackNever is never true: it makes buf look used, or the compiler
// would drop it and growStack would grow nothing.
var growStackNever bool

//go:noinline
func touchStack(buf *[growStackBy]byte) { buf[0]++ }
