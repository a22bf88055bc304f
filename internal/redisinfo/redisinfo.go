// Package redisinfo reads Redis's INFO answers: a field, the server's own
// CPU time and the per-command times of INFO commandstats, with the one
// rule for adding those up while wagate's Redis functions run commands of
// their own. The bench suite and the store's benchmarks both report by it.
package redisinfo

import (
	"strconv"
	"strings"
)

// Field is a number of an INFO answer, or -1.
func Field(info, name string) float64 {
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && k == name {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// CPUSeconds adds used_cpu_user and used_cpu_sys of INFO cpu (the server's
// own threads, not its children), or -1.
func CPUSeconds(info string) float64 {
	u, s := Field(info, "used_cpu_user"), Field(info, "used_cpu_sys")
	if u < 0 || s < 0 {
		return -1
	}
	return u + s
}

// CommandStat is one command's line of INFO commandstats.
type CommandStat struct {
	Calls int64
	Usec  int64
}

// CommandStats reads the "cmdstat_<name>:calls=N,usec=N,…" lines of an
// INFO commandstats answer.
func CommandStats(info string) map[string]CommandStat {
	out := map[string]CommandStat{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, ok2 := strings.CutPrefix(name, "cmdstat_")
		if !ok || !ok2 {
			continue
		}
		var st CommandStat
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				st.Calls = n
			case "usec":
				st.Usec = n
			}
		}
		out[name] = st
	}
	return out
}

// InFunctions reports whether wagate's Redis functions run command name.
// Their time is in the calling FCALL's, and INFO commandstats lists them on
// their own as well; the same commands sent directly (the loader's XACK,
// say) cannot be told apart and are left out of Usec's sum.
func InFunctions(name string) bool {
	switch name {
	case "hset", "hmget", "hget", "expire", "pexpire", "xadd", "rpush", "ltrim", "zadd", "zrem", "xrange",
		"xrevrange", "xtrim", "hincrby", "hsetnx", "hdel", "exists", "set", "get", "del", "incr", "persist",
		"xgroup|create", "xdel", "xack", "xlen", "zrangebyscore":
		return true
	}
	return false
}

// Usec is the time Redis spent in commands between readings a and b:
// FCALL's (with the commands the functions ran) plus that of every command
// the functions never run, less INFO itself.
func Usec(a, b map[string]CommandStat) int64 {
	var total int64
	for name, st := range b {
		if InFunctions(name) || name == "info" {
			continue
		}
		total += st.Usec - a[name].Usec
	}
	return total
}
