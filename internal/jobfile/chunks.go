package jobfile

import (
	"errors"
	"io"
	"sync"
)

// Chunks reads the rest of the file and calls fn with runs of up to size
// consecutive rows, in file order, from the calling goroutine. Decoding a
// JSONL row (the strict JSON parse) is most of what reading a row costs, so
// up to workers goroutines decode JSONL rows at once, a few chunks ahead of
// fn; CSV rows are cheap and decoded as they are read. A JSONL chunk is cut
// short at maxChunkBytes, so memory stays bounded by about 2×workers+2
// chunks of at most that size, whatever the file's size and its rows'.
//
// It returns nil after the last row, the first fatal read error (as Next
// would return it, after fn has had every row before it), or the first
// error fn returns, which stops the reading.
func (r *Reader) Chunks(size, workers int, fn func([]Row) error) error {
	size, workers = max(size, 1), max(workers, 1)
	if r.err != nil { // Next has met the end or a fatal error
		if errors.Is(r.err, io.EOF) {
			return nil
		}
		return r.err
	}
	if r.format != JSONL || workers == 1 {
		return r.chunksInline(size, fn)
	}

	// The reader goroutine hands out raw chunks to the decoders and queues
	// each chunk's result channel in file order for the loop below.
	type rawRow struct {
		line int
		data []byte
		err  error
	}
	type task struct {
		rows []rawRow
		out  chan []Row
	}
	tasks := make(chan task)
	order := make(chan chan []Row, 2*workers)
	stop := make(chan struct{})
	var readErr error
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range tasks {
				rows := make([]Row, len(t.rows))
				for i, raw := range t.rows {
					if raw.err != nil {
						rows[i] = Row{Line: raw.line, Err: raw.err}
					} else {
						rows[i] = decodeJSONL(raw.line, raw.data)
					}
				}
				t.out <- rows // buffered: never blocks
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(tasks)
		for {
			var raws []rawRow
			var err error
			for n := 0; len(raws) < size && n < maxChunkBytes; {
				line, data, rowErr, e := r.nextRawJSONL()
				if e != nil {
					err = e
					break
				}
				raws = append(raws, rawRow{line: line, data: append([]byte(nil), data...), err: rowErr})
				n += len(data)
			}
			if len(raws) > 0 {
				t := task{rows: raws, out: make(chan []Row, 1)}
				select {
				case order <- t.out:
				case <-stop:
					return
				}
				select {
				case tasks <- t:
				case <-stop:
					return
				}
			}
			if err != nil {
				r.err = err
				if !errors.Is(err, io.EOF) {
					readErr = err // read by the loop below once order is closed
				}
				return
			}
		}
	}()

	var fnErr error
	for out := range order {
		rows := <-out
		if fnErr = fn(rows); fnErr != nil {
			break
		}
	}
	close(stop)
	for range order { // let the reader goroutine see stop and end
	}
	wg.Wait()
	if fnErr != nil {
		return fnErr
	}
	return readErr
}

// maxChunkBytes bounds the raw bytes of a JSONL chunk: 64 rows of the
// largest job would be 4 MiB.
const maxChunkBytes = 1 << 20

// chunksInline is Chunks without decoding goroutines.
func (r *Reader) chunksInline(size int, fn func([]Row) error) error {
	rows := make([]Row, 0, size)
	for {
		row, err := r.Next()
		if err != nil {
			if len(rows) > 0 {
				if ferr := fn(rows); ferr != nil {
					return ferr
				}
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		rows = append(rows, row)
		if len(rows) == size {
			if err := fn(rows); err != nil {
				return err
			}
			rows = make([]Row, 0, size)
		}
	}
}
