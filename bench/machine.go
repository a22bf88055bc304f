package bench

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine is what the figures were measured on.
type Machine struct {
	// Cores is the CPUs this process may use (runtime.NumCPU, what
	// `nproc` prints); Nproc the CPUs /proc/cpuinfo lists.
	Cores      int    `json:"cores"`
	Nproc      int    `json:"nproc"`
	CPU        string `json:"cpu"`
	MemTotalMB int    `json:"mem_total_mb"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	OS         string `json:"os"`
}

// ThisMachine describes the machine wabench runs on.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		m.CPU, m.Nproc = parseCPUInfo(f)
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotalMB = parseMemTotalMB(string(b))
	}
	if m.Nproc == 0 {
		m.Nproc = m.Cores
	}
	return m
}

// parseCPUInfo returns the first "model name" of /proc/cpuinfo and the
// number of processors it lists.
func parseCPUInfo(f *os.File) (model string, n int) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			n++
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		}
	}
	return model, n
}

func parseMemTotalMB(meminfo string) int {
	for _, line := range strings.Split(meminfo, "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb / 1024
		}
	}
	return 0
}
