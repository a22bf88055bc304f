package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is one wabench run: where, with what, the ceilings and the
// scenarios' results. It is the JSON output as it is.
type Report struct {
	// Date of the run (YYYY-MM-DD) and when it started (RFC 3339).
	Date    string  `json:"date"`
	Started string  `json:"started"`
	Machine Machine `json:"machine"`
	// Command is the wabench command line; Gateway the gateway's, as
	// given with -gateway-cmd (wabench does not start the gateway).
	Command  string    `json:"command"`
	Gateway  string    `json:"gateway,omitempty"`
	Ceilings []Ceiling `json:"ceilings"`
	Results  []Result  `json:"results"`
}

// Ceiling is this machine's limit for one kind of work, measured by
// wabench itself in the same run.
type Ceiling struct {
	// Name is what scenarios refer to: http/send, http/webhook,
	// http/webhook-batched, redis/xadd, clickhouse/insert.
	Name string `json:"name"`
	// What says how it was measured.
	What string `json:"what"`
	// Value per second, in Unit (req/s, msg/s, rows/s).
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// PerMessage is Value in messages per second when a message is more
	// than one unit (the event rows of one message's life).
	PerMessage float64  `json:"per_message,omitempty"`
	Count      int64    `json:"count"`
	Errors     int64    `json:"errors"`
	Elapsed    float64  `json:"elapsed_s"`
	Latency    *Latency `json:"latency,omitempty"`
	// Figures are what else was measured (the CPU each process used).
	Figures map[string]float64 `json:"figures,omitempty"`
}

// Latency is a distribution's summary, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P95  float64 `json:"p95_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
	N    uint64  `json:"n"`
}

// LatencyOf summarizes h.
func LatencyOf(h *Histogram) *Latency {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return &Latency{P50: ms(h.Quantile(0.50)), P95: ms(h.Quantile(0.95)), P99: ms(h.Quantile(0.99)),
		Max: ms(h.Max()), Mean: ms(h.Mean()), N: h.Count()}
}

// Result is one scenario's (or sub-result's) figures against its ceiling
// and its goal.
type Result struct {
	// Scenario is single, bulk, webhooks, e2e or backlog; Name tells
	// sub-results apart (webhooks/one-per-request, webhooks/batched-50).
	Scenario    string `json:"scenario"`
	Name        string `json:"name"`
	Concurrency int    `json:"concurrency,omitempty"`
	// Elapsed is the measured window, seconds.
	Elapsed  float64 `json:"elapsed_s"`
	Requests int64   `json:"requests"`
	Messages int64   `json:"messages"`
	Errors   int64   `json:"errors"`
	// ErrorKinds counts the errors by kind ("http 503 SERVICE_UNAVAILABLE").
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	RPS        float64          `json:"rps"`
	MPS        float64          `json:"mps"`
	// Latency of the requests (e2e: of the messages, API to read row).
	Latency *Latency `json:"latency,omitempty"`
	// Throughput is the headline figure, in Unit, that Ratio compares
	// with the ceiling's value (in the same unit).
	Throughput float64 `json:"throughput"`
	Unit       string  `json:"unit"`
	// Ceiling names the ceiling; CeilingValue is in Unit.
	Ceiling      string  `json:"ceiling,omitempty"`
	CeilingValue float64 `json:"ceiling_value,omitempty"`
	Ratio        float64 `json:"ratio,omitempty"`
	// Goal is issue 5's target in words; Met whether this run reached it
	// (nil: the result has no target of its own).
	Goal string `json:"goal,omitempty"`
	Met  *bool  `json:"met,omitempty"`
	// Checks are what was verified after the load (durability, applied
	// statuses, nothing lost).
	Checks []Check `json:"checks,omitempty"`
	// Figures are the scenario's other numbers (lags, RSS, queue depth).
	Figures map[string]float64 `json:"figures,omitempty"`
	Notes   []string           `json:"notes,omitempty"`
}

// Check is one verification: of Want items, Got were as they should be.
type Check struct {
	What string `json:"what"`
	Want int64  `json:"want"`
	Got  int64  `json:"got"`
	OK   bool   `json:"ok"`
	// Detail says what was wrong with the first few that were not.
	Detail string `json:"detail,omitempty"`
}

// fromLoad fills the load figures of a result.
func (r *Result) fromLoad(l *LoadResult) {
	r.Concurrency = l.Concurrency
	r.Elapsed = l.Elapsed.Seconds()
	r.Requests, r.Messages, r.Errors = l.Requests, l.Messages, l.ErrorCount()
	if len(l.Errors) > 0 {
		r.ErrorKinds = maps.Clone(l.Errors)
	}
	r.RPS, r.MPS = l.RPS(), l.MPS()
	if l.Latency.Count() > 0 {
		r.Latency = LatencyOf(&l.Latency)
	}
}

// compare sets the ratio of r's throughput to the ceiling c (per message
// when perMessage).
func (r *Result) compare(c *Ceiling, perMessage bool) {
	if c == nil {
		return
	}
	r.Ceiling, r.CeilingValue = c.Name, c.Value
	if perMessage && c.PerMessage > 0 {
		r.CeilingValue = c.PerMessage
	}
	if r.CeilingValue > 0 {
		r.Ratio = r.Throughput / r.CeilingValue
	}
}

// judge sets Met: every condition and every check must hold.
func (r *Result) judge(conds ...bool) {
	ok := true
	for _, c := range conds {
		ok = ok && c
	}
	for _, c := range r.Checks {
		ok = ok && c.OK
	}
	r.Met = &ok
}

func (r *Result) figure(name string, v float64) {
	if r.Figures == nil {
		r.Figures = map[string]float64{}
	}
	r.Figures[name] = v
}

// Ceiling returns the ceiling named name, or nil.
func (rep *Report) Ceiling(name string) *Ceiling {
	for i := range rep.Ceilings {
		if rep.Ceilings[i].Name == name {
			return &rep.Ceilings[i]
		}
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(rep)
}

// WriteTable writes the closing table for a terminal: one line per
// result and per ceiling.
func (rep *Report) WriteTable(w io.Writer) error {
	rows := [][]string{{"result", "throughput", "p50", "p95", "p99", "errors", "ceiling", "ratio", "goal"}}
	for _, r := range rep.Results {
		rows = append(rows, []string{r.Name, rate(r.Throughput, r.Unit), latCell(r.Latency, 0.5), latCell(r.Latency, 0.95),
			latCell(r.Latency, 0.99), groupDigits(r.Errors), ceilingCell(r.Ceiling, r.CeilingValue, r.Unit), ratioCell(r.Ratio), metCell(r.Met)})
	}
	for _, c := range rep.Ceilings {
		rows = append(rows, []string{"ceiling " + c.Name, rate(c.Value, c.Unit), latCell(c.Latency, 0.5), latCell(c.Latency, 0.95),
			latCell(c.Latency, 0.99), groupDigits(c.Errors), "", "", ""})
	}
	writeColumns(w, rows)
	for _, r := range rep.Results {
		for _, c := range r.Checks {
			fmt.Fprintf(w, "%s: %s: %s of %s%s\n", r.Name, c.What, groupDigits(c.Got), groupDigits(c.Want), okCell(c.OK, c.Detail))
		}
	}
	return nil
}

func okCell(ok bool, detail string) string {
	if ok {
		return " ok"
	}
	if detail != "" {
		return " FAILED (" + detail + ")"
	}
	return " FAILED"
}

// writeColumns pads cells to their column's width (in runes).
func writeColumns(w io.Writer, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := width[i] - len([]rune(c))
			if i == 0 || i >= 6 {
				b.WriteString(c + strings.Repeat(" ", pad))
			} else {
				b.WriteString(strings.Repeat(" ", pad) + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// WriteMarkdown writes the report for people: the machine, the commands,
// the results beside their ceilings, the ceilings, the checks and notes.
func (rep *Report) WriteMarkdown(w io.Writer) error {
	m := rep.Machine
	fmt.Fprintf(w, "### wabench run of %s\n\n", rep.Started)
	fmt.Fprintf(w, "Machine: %d cores (`nproc` %d), %s, %s MB RAM, %s, %s, GOMAXPROCS %d.\n\n",
		m.Cores, m.Nproc, m.CPU, groupDigits(int64(m.MemTotalMB)), m.OS, m.Go, m.GOMAXPROCS)
	fmt.Fprintf(w, "```sh\n")
	if rep.Gateway != "" {
		fmt.Fprintf(w, "%s\n", rep.Gateway)
	}
	fmt.Fprintf(w, "%s\n```\n\n", rep.Command)
	if len(rep.Results) > 0 {
		fmt.Fprintln(w, "| result | throughput | p50 | p95 | p99 | errors | ceiling | ratio | goal | met |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|---|--:|---|---|")
		for _, r := range rep.Results {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Name, rate(r.Throughput, r.Unit),
				latCell(r.Latency, 0.5), latCell(r.Latency, 0.95), latCell(r.Latency, 0.99), groupDigits(r.Errors),
				ceilingCell(r.Ceiling, r.CeilingValue, r.Unit), ratioCell(r.Ratio), mdEscape(r.Goal), metCell(r.Met))
		}
		fmt.Fprintln(w)
	}
	if len(rep.Ceilings) > 0 {
		fmt.Fprintln(w, "| ceiling | value | per message | p50 | p99 | count | errors | how |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|---|")
		for _, c := range rep.Ceilings {
			per := ""
			if c.PerMessage > 0 {
				per = rate(c.PerMessage, "msg/s")
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", c.Name, rate(c.Value, c.Unit), per,
				latCell(c.Latency, 0.5), latCell(c.Latency, 0.99), groupDigits(c.Count), groupDigits(c.Errors), mdEscape(c.What))
		}
		fmt.Fprintln(w)
	}
	for _, c := range rep.Ceilings {
		if len(c.Figures) == 0 {
			continue
		}
		fmt.Fprintf(w, "**ceiling %s** (%s in %.1f s)\n\n", c.Name, groupDigits(c.Count), c.Elapsed)
		for _, k := range slices.Sorted(maps.Keys(c.Figures)) {
			fmt.Fprintf(w, "- %s: %s\n", k, number(c.Figures[k]))
		}
		fmt.Fprintln(w)
	}
	for _, r := range rep.Results {
		if len(r.Checks)+len(r.Figures)+len(r.Notes)+len(r.ErrorKinds) == 0 {
			continue
		}
		fmt.Fprintf(w, "**%s** (%s requests, %s messages in %.1f s, concurrency %d)\n\n",
			r.Name, groupDigits(r.Requests), groupDigits(r.Messages), r.Elapsed, r.Concurrency)
		for _, c := range r.Checks {
			fmt.Fprintf(w, "- %s: %s of %s%s\n", mdEscape(c.What), groupDigits(c.Got), groupDigits(c.Want), okCell(c.OK, mdEscape(c.Detail)))
		}
		for _, k := range slices.Sorted(maps.Keys(r.ErrorKinds)) {
			fmt.Fprintf(w, "- error `%s`: %s\n", k, groupDigits(r.ErrorKinds[k]))
		}
		for _, k := range slices.Sorted(maps.Keys(r.Figures)) {
			fmt.Fprintf(w, "- %s: %s\n", k, number(r.Figures[k]))
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s\n", mdEscape(n))
		}
		fmt.Fprintln(w)
	}
	return nil
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// number writes a figure: whole numbers grouped, fractions with 3 digits.
func number(v float64) string {
	if v == float64(int64(v)) {
		return groupDigits(int64(v))
	}
	if v >= 100 {
		return groupDigits(int64(v + 0.5))
	}
	return fmt.Sprintf("%.3f", v)
}

func rate(v float64, unit string) string {
	if unit == "" {
		return number(v)
	}
	return groupDigits(int64(v+0.5)) + " " + unit
}

func latCell(l *Latency, q float64) string {
	if l == nil || l.N == 0 {
		return "–"
	}
	v := l.P50
	switch q {
	case 0.95:
		v = l.P95
	case 0.99:
		v = l.P99
	}
	return ms(v)
}

// ms writes milliseconds with 3 significant digits or so.
func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

func ceilingCell(name string, v float64, unit string) string {
	if name == "" {
		return "–"
	}
	return name + " " + rate(v, unit)
}

func ratioCell(r float64) string {
	if r == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", r*100)
}

func metCell(m *bool) string {
	switch {
	case m == nil:
		return "–"
	case *m:
		return "met"
	}
	return "MISSED"
}
