package sweep

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Bar reports progress: a redrawn bar with rate and ETA on a terminal,
// plain lines (at most every Every, and at each tenth) otherwise.
type Bar struct {
	W     io.Writer
	TTY   bool
	Every time.Duration // plain mode: the longest gap between lines (default 5s)
	Now   func() time.Time

	total, skipped  int
	done, failed    int
	scored, correct int
	start, drawn    time.Time
	lastTenth       int
}

// Start implements Progress.
func (b *Bar) Start(total, skipped int) {
	if b.Now == nil {
		b.Now = time.Now
	}
	if b.Every <= 0 {
		b.Every = 5 * time.Second
	}
	b.total, b.skipped, b.start = total, skipped, b.Now()
	if skipped > 0 {
		fmt.Fprintf(b.W, "sweep: resuming: %d already done, %d to send\n", skipped, total)
	} else {
		fmt.Fprintf(b.W, "sweep: %d to send\n", total)
	}
	b.drawn = b.start
	if b.TTY {
		b.draw()
	}
}

// Done implements Progress.
func (b *Bar) Done(o Outcome) {
	b.done++
	if o.Error != "" {
		b.failed++
	}
	if o.Score != nil {
		b.scored++
		b.correct += int(*o.Score)
	}
	now := b.Now()
	if b.TTY {
		if now.Sub(b.drawn) >= 100*time.Millisecond || b.done == b.total {
			b.drawn = now
			b.draw()
		}
		return
	}
	tenth := 0
	if b.total > 0 {
		tenth = b.done * 10 / b.total
	}
	if tenth > b.lastTenth {
		b.drawn, b.lastTenth = now, tenth
		fmt.Fprintln(b.W, "sweep: "+b.status())
	}
}

// Tick redraws the bar (on a terminal) or prints a line when Every has
// passed since the last one, so waits for rate limits and retries show.
func (b *Bar) Tick() {
	now := b.Now()
	if b.TTY {
		b.drawn = now
		b.draw()
		return
	}
	if now.Sub(b.drawn) >= b.Every {
		b.drawn = now
		fmt.Fprintln(b.W, "sweep: "+b.status())
	}
}

// Finish implements Progress.
func (b *Bar) Finish() {
	if b.TTY {
		b.draw()
		fmt.Fprintln(b.W)
		return
	}
	if b.done != b.total || b.lastTenth < 10 {
		fmt.Fprintln(b.W, "sweep: "+b.status())
	}
}

func (b *Bar) draw() {
	const width = 30
	fill := 0
	if b.total > 0 {
		fill = b.done * width / b.total
	}
	fmt.Fprintf(b.W, "\r[%s%s] %s\x1b[K", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), b.status())
}

// status is the one-line summary: done, share, rate, ETA, failures and
// running accuracy.
func (b *Bar) status() string {
	elapsed := b.Now().Sub(b.start)
	var s strings.Builder
	fmt.Fprintf(&s, "%d/%d", b.done, b.total)
	if b.total > 0 {
		fmt.Fprintf(&s, " (%d%%)", b.done*100/b.total)
	}
	if elapsed > 0 && b.done > 0 {
		rate := float64(b.done) / elapsed.Seconds()
		fmt.Fprintf(&s, " %.1f/s", rate)
		if left := b.total - b.done; left > 0 {
			eta := time.Duration(float64(left) / rate * float64(time.Second))
			fmt.Fprintf(&s, " ETA %s", eta.Round(time.Second))
		}
	}
	if b.failed > 0 {
		fmt.Fprintf(&s, " failed %d", b.failed)
	}
	if b.scored > 0 {
		fmt.Fprintf(&s, " accuracy %.1f%%", float64(b.correct)*100/float64(b.scored))
	}
	return s.String()
}
