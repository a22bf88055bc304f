package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress draws one line per run on a terminal, redrawn in place every
// tick: a bar (of the duration, or of the request count), the counts, the
// current rate and the errors. Written elsewhere (a file, a CI log), it
// prints a plain line every few seconds instead of carriage returns.
type Progress struct {
	w     io.Writer
	tty   bool
	every time.Duration

	mu     sync.Mutex
	stop   chan struct{}
	done   chan struct{}
	name   string
	dur    time.Duration
	total  uint64
	live   *liveCounts
	start  time.Time
	lastN  int64
	lastAt time.Time
	width  int
}

// NewProgress returns a progress line on w; tty says whether w is a
// terminal (see IsTerminal).
func NewProgress(w io.Writer, tty bool) *Progress {
	every := 200 * time.Millisecond
	if !tty {
		every = 5 * time.Second
	}
	return &Progress{w: w, tty: tty, every: every}
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Start begins a line for run name; live carries its counts.
func (p *Progress) Start(name string, dur time.Duration, total uint64, live *liveCounts) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.name, p.dur, p.total, p.live = name, dur, total, live
	p.start, p.lastAt, p.lastN = time.Now(), time.Now(), 0
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go p.loop(p.stop, p.done)
}

// Stop draws the line a last time and ends it.
func (p *Progress) Stop() {
	p.mu.Lock()
	stop, done := p.stop, p.done
	p.stop = nil
	p.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	<-done
}

// Note prints a line of its own (a phase of a scenario).
func (p *Progress) Note(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "  · "+format+"\n", args...)
}

func (p *Progress) loop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			p.draw(true)
			return
		case <-t.C:
			p.draw(false)
		}
	}
}

func (p *Progress) draw(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	n := p.live.requests.Load()
	rate := float64(n-p.lastN) / now.Sub(p.lastAt).Seconds()
	if final {
		rate = perSecond(n, now.Sub(p.start))
	}
	p.lastN, p.lastAt = n, now
	line := progressLine(p.name, now.Sub(p.start), p.dur, uint64(n), p.total,
		p.live.messages.Load(), p.live.errors.Load(), rate)
	switch {
	case p.tty:
		pad := max(p.width-len(line), 0)
		p.width = len(line)
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		if final {
			fmt.Fprintln(p.w)
		}
	default:
		fmt.Fprintln(p.w, line)
	}
}

// progressLine renders one state of a run: the bar follows the duration
// when there is one, else the request count.
func progressLine(name string, elapsed, dur time.Duration, n, total uint64, msgs, errs int64, rate float64) string {
	const barWidth = 24
	frac := -1.0
	switch {
	case dur > 0:
		frac = elapsed.Seconds() / dur.Seconds()
	case total > 0:
		frac = float64(n) / float64(total)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s ", name)
	if frac >= 0 {
		frac = min(frac, 1)
		full := int(frac * barWidth)
		b.WriteByte('[')
		b.WriteString(strings.Repeat("#", full))
		b.WriteString(strings.Repeat("-", barWidth-full))
		fmt.Fprintf(&b, "] %3.0f%% ", frac*100)
	}
	fmt.Fprintf(&b, "%6.1fs  %s req  %s/s", elapsed.Seconds(), groupDigits(int64(n)), groupDigits(int64(rate)))
	if msgs != int64(n) {
		fmt.Fprintf(&b, "  %s msg", groupDigits(msgs))
	}
	fmt.Fprintf(&b, "  err %s", groupDigits(errs))
	return b.String()
}

// groupDigits writes n with a space between thousands: 1 234 567.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}
