package redis

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// The Lua sources: lib.lua's shared local functions, then one file per
// function, each documenting its KEYS and ARGV.
var (
	//go:embed lib.lua
	libSrc string
	//go:embed enqueue.lua
	enqueueSrc string
	//go:embed schedule.lua
	scheduleSrc string
	//go:embed begin.lua
	beginSrc string
	//go:embed finish.lua
	finishSrc string
	//go:embed transition.lua
	transitionSrc string
	//go:embed retry.lua
	retrySrc string
	//go:embed promote.lua
	promoteSrc string
	//go:embed lease.lua
	leaseSrc string
	//go:embed gc.lua
	gcSrc string
	//go:embed requeue.lua
	requeueSrc string
	//go:embed enqueue_chunk.lua
	enqueueChunkSrc string
	//go:embed chunk_done.lua
	chunkDoneSrc string
	//go:embed cancel_chunk.lua
	cancelChunkSrc string
	//go:embed inbound.lua
	inboundSrc string
	//go:embed optset.lua
	optsetSrc string
	//go:embed conv_action.lua
	convActionSrc string
	//go:embed claim_due.lua
	claimDueSrc string
	//go:embed file.lua
	fileSrc string
	//go:embed portfolio.lua
	portfolioSrc string
	//go:embed hook_skip.lua
	hookSkipSrc string
)

// library is wagate's Redis Functions library: lib.lua once, then every
// function. It is loaded once per server (FUNCTION LOAD, on every master of
// a Cluster) and called with FCALL: no script is sent or re-parsed per
// call, and the shared code is not prepended to each.
//
// The library's name and its functions' names end in a hash of the whole
// source, so two builds of wagate on one Redis (a rolling upgrade) each
// call their own code; a library of an older build stays loaded, unused.
type library struct {
	name string
	src  string
	// mu serializes loads (a burst of "function not found" answers after
	// Redis lost the library loads it once at a time).
	mu sync.Mutex
}

// function is one function of the library.
type function struct {
	lib  *library
	name string
}

// scripts holds wagate's functions. They run with FCALL, inside pipelines
// or alone; after Redis lost them (a new server, FUNCTION FLUSH) a call
// answers "function not found": the library is loaded again and the call
// repeated (see batcher and function.Run).
type scripts struct {
	lib                                                                              *library
	enqueue, schedule, begin, finish, transition, retry, promote, lease, gc, requeue *function
	enqueueChunk, inbound, optset, convAction, claimDue, file                        *function
	chunkDone, cancelChunk, portfolio, hookSkip                                      *function
}

func newScripts() *scripts {
	type def struct {
		fn   **function
		name string
		src  string
		// gather: the function's events go out as one entry per
		// events stream and call (lib.lua's gathered): the functions
		// that handle many messages a call.
		gather bool
	}
	s := &scripts{}
	defs := []def{
		{&s.enqueue, "enqueue", enqueueSrc, true}, {&s.schedule, "schedule", scheduleSrc, true}, {&s.begin, "begin", beginSrc, true}, {&s.finish, "finish", finishSrc, true},
		{&s.transition, "transition", transitionSrc, true}, {&s.retry, "retry", retrySrc, false}, {&s.promote, "promote", promoteSrc, false},
		{&s.lease, "lease", leaseSrc, false}, {&s.gc, "gc", gcSrc, false}, {&s.requeue, "requeue", requeueSrc, false},
		{&s.enqueueChunk, "enqueue_chunk", enqueueChunkSrc, false},
		{&s.chunkDone, "chunk_done", chunkDoneSrc, false}, {&s.cancelChunk, "cancel_chunk", cancelChunkSrc, false},
		{&s.inbound, "inbound", inboundSrc, false}, {&s.optset, "optset", optsetSrc, false}, {&s.convAction, "conv_action", convActionSrc, false},
		{&s.claimDue, "claim_due", claimDueSrc, false}, {&s.file, "file", fileSrc, false},
		{&s.portfolio, "portfolio", portfolioSrc, false}, {&s.hookSkip, "hook_skip", hookSkipSrc, false},
	}
	for i := range defs {
		if defs[i].gather {
			defs[i].src = "return gathered(function()\n" + defs[i].src + "\nend)"
		}
	}
	h := sha1.New()
	h.Write([]byte(libSrc))
	for _, d := range defs {
		h.Write([]byte(d.name))
		h.Write([]byte(d.src))
	}
	tag := hex.EncodeToString(h.Sum(nil))[:12]
	var b strings.Builder
	fmt.Fprintf(&b, "#!lua name=wagate_%s\n", tag)
	b.WriteString(libSrc)
	s.lib = &library{name: "wagate_" + tag}
	for _, d := range defs {
		name := d.name + "_" + tag
		// The function's parameters are named as a script's globals, so
		// each source reads KEYS and ARGV as it would under EVAL.
		fmt.Fprintf(&b, "\nredis.register_function('%s', function(KEYS, ARGV)\n%s\nend)\n", name, d.src)
		*d.fn = &function{lib: s.lib, name: name}
	}
	s.lib.src = b.String()
	return s
}

// onEveryMaster runs fn on rdb, or on each master of a Cluster (at once:
// fn must be safe for concurrent use).
func onEveryMaster(ctx context.Context, rdb goredis.UniversalClient, fn func(context.Context, goredis.Cmdable) error) error {
	if cc, ok := rdb.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return fn(ctx, c) })
	}
	return fn(ctx, rdb)
}

// load puts the library into every master (one server, or each master of
// a Cluster). A library loaded already is left as it is.
func (s *scripts) load(ctx context.Context, rdb goredis.UniversalClient) error {
	return s.lib.load(ctx, rdb)
}

func (l *library) load(ctx context.Context, rdb goredis.UniversalClient) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	one := func(ctx context.Context, c goredis.Cmdable) error {
		err := c.FunctionLoad(ctx, l.src).Err()
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			return err
		}
		return nil
	}
	if err := onEveryMaster(ctx, rdb, one); err != nil {
		return fmt.Errorf("load redis functions: %w", err)
	}
	return nil
}

// FCall queues a call of the function in pipeline p (or runs it on a
// client); a "function not found" answer is the caller's to handle.
func (f *function) FCall(ctx context.Context, p goredis.Cmdable, keys []string, args ...any) *goredis.Cmd {
	return p.FCall(ctx, f.name, keys, args...)
}

// Run calls the function on rdb, loading the library first when Redis
// does not have it.
func (f *function) Run(ctx context.Context, rdb goredis.UniversalClient, keys []string, args ...any) *goredis.Cmd {
	cmd := rdb.FCall(ctx, f.name, keys, args...)
	if isNoScript(cmd.Err()) {
		if err := f.lib.load(ctx, rdb); err != nil {
			c := goredis.NewCmd(ctx)
			c.SetErr(err)
			return c
		}
		cmd = rdb.FCall(ctx, f.name, keys, args...)
	}
	return cmd
}

// isNoScript reports whether err says Redis does not have the function
// called (a new or flushed server): nothing ran.
func isNoScript(err error) bool {
	if err == nil || errors.Is(err, goredis.Nil) {
		return false
	}
	m := err.Error()
	return strings.HasPrefix(m, "NOSCRIPT") || strings.Contains(m, "Function not found")
}

// EnsureFunctions makes sure Redis (every master of a Cluster) has this
// build's functions library, loading it where it is missing as the next
// call would; the error says it is missing and could not be loaded. For
// readiness checks: a list of libraries costs less than sending the source.
func (s *Store) EnsureFunctions(ctx context.Context) error {
	has := func(ctx context.Context, c goredis.Cmdable) error {
		libs, err := c.FunctionList(ctx, goredis.FunctionListQuery{LibraryNamePattern: s.scripts.lib.name}).Result()
		if err != nil {
			return fmt.Errorf("function list: %w", err)
		}
		if len(libs) == 0 {
			return errNoLibrary
		}
		return nil
	}
	err := onEveryMaster(ctx, s.rdb, has)
	if !errors.Is(err, errNoLibrary) {
		return err
	}
	if err := s.scripts.load(ctx, s.rdb); err != nil {
		return fmt.Errorf("library %s missing: %w", s.scripts.lib.name, err)
	}
	return nil
}

// errNoLibrary: Redis does not have the functions library.
var errNoLibrary = errors.New("functions library not loaded")
