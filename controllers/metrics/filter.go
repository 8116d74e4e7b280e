package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Bounds on what one pod's exposition may make the operator parse. The
// text parser keeps every line it reads as a parsed metric, which costs
// far more than its text; so only the lines of the families reduce reads
// reach it, and only so many. pacer-api writes about 2,000 such lines (26
// per latency series); 24 distinct bucket bounds.
const (
	// maxSeriesLines bounds the sample lines of wanted families.
	maxSeriesLines = 20000
	// maxLineBytes bounds one line of the exposition.
	maxLineBytes = 64 << 10
	// maxBuckets bounds the distinct upper bounds of the latency histogram.
	maxBuckets = 128
)

// errTooManySeries is the error of an exposition past maxSeriesLines.
var errTooManySeries = fmt.Errorf("more than %d series of pacer-api's metrics", maxSeriesLines)

// expositionFilter passes to the text parser only the sample, HELP and
// TYPE lines of the families in want, at most maxSeries sample lines. A
// line longer than the reader's buffer is an error.
type expositionFilter struct {
	r         *bufio.Reader
	want      map[string]bool // family names, and sample names (a histogram's _bucket, _sum, _count)
	maxSeries int
	series    int
	pending   []byte
	err       error
}

func newExpositionFilter(r io.Reader, want map[string]bool, maxSeries int) *expositionFilter {
	return &expositionFilter{r: bufio.NewReaderSize(r, maxLineBytes), want: want, maxSeries: maxSeries}
}

func (f *expositionFilter) Read(p []byte) (int, error) {
	for len(f.pending) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		line, err := f.r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			f.err = fmt.Errorf("a line longer than %d bytes", maxLineBytes)
			continue
		case err != nil:
			f.err = err // io.EOF after the last line, or the body's error
		}
		keep, kerr := f.keep(line)
		if kerr != nil {
			f.err = kerr
			continue
		}
		if keep {
			f.pending = line
		}
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

// keep says whether the parser needs line.
func (f *expositionFilter) keep(line []byte) (bool, error) {
	line = bytes.TrimLeft(line, " \t")
	if len(line) == 0 || line[0] == '\n' {
		return false, nil
	}
	if line[0] == '#' {
		// "# HELP name ..." and "# TYPE name type"; any other comment goes.
		fields := bytes.Fields(line[1:])
		return len(fields) >= 2 && (string(fields[0]) == "HELP" || string(fields[0]) == "TYPE") &&
			f.want[string(fields[1])], nil
	}
	// A sample: its name ends at the labels or the value. A quoted UTF-8
	// name ({"name", ...}) is none of pacer-api's.
	end := bytes.IndexAny(line, "{ \t")
	if end <= 0 || !f.want[string(line[:end])] {
		return false, nil
	}
	if f.series++; f.series > f.maxSeries {
		return false, errTooManySeries
	}
	return true, nil
}
