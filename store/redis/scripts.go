package redis

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// The Lua scripts, each documented (KEYS and ARGV) in its own file, with
// lib.lua's shared functions in front.
var (
	//go:embed lib.lua
	libSrc string
	//go:embed enqueue.lua
	enqueueSrc string
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
	//go:embed enqueue_many.lua
	enqueueManySrc string
	//go:embed cancel_many.lua
	cancelManySrc string
	//go:embed inbound.lua
	inboundSrc string
	//go:embed optset.lua
	optsetSrc string
	//go:embed conv_action.lua
	convActionSrc string
	//go:embed claim_due.lua
	claimDueSrc string
)

// scripts holds the loaded scripts. They run with EVALSHA inside pipelines;
// after a Redis restart or SCRIPT FLUSH the pipeline answers NOSCRIPT and the
// jobs that did not run are sent again after load (see batcher).
type scripts struct {
	enqueue, begin, finish, transition, retry, promote, lease, gc, requeue *goredis.Script
	enqueueMany, cancelMany, inbound, optset, convAction, claimDue         *goredis.Script
}

func newScripts() *scripts {
	lib := func(src string) *goredis.Script { return goredis.NewScript(libSrc + src) }
	return &scripts{
		enqueue: lib(enqueueSrc), begin: lib(beginSrc), finish: lib(finishSrc),
		transition: lib(transitionSrc), retry: lib(retrySrc), promote: lib(promoteSrc),
		lease: lib(leaseSrc), gc: lib(gcSrc), requeue: lib(requeueSrc),
		enqueueMany: lib(enqueueManySrc), cancelMany: lib(cancelManySrc),
		inbound: lib(inboundSrc), optset: lib(optsetSrc), convAction: lib(convActionSrc), claimDue: lib(claimDueSrc),
	}
}

func (s *scripts) all() []*goredis.Script {
	return []*goredis.Script{s.enqueue, s.begin, s.finish, s.transition, s.retry, s.promote, s.lease, s.gc, s.requeue,
		s.enqueueMany, s.cancelMany, s.inbound, s.optset, s.convAction, s.claimDue}
}

// load puts every script into the script cache of every node.
func (s *scripts) load(ctx context.Context, rdb goredis.UniversalClient) error {
	for _, sc := range s.all() {
		var err error
		if cc, ok := rdb.(*goredis.ClusterClient); ok {
			err = cc.ForEachShard(ctx, func(ctx context.Context, c *goredis.Client) error {
				return sc.Load(ctx, c).Err()
			})
		} else {
			err = sc.Load(ctx, rdb).Err()
		}
		if err != nil {
			return fmt.Errorf("load scripts: %w", err)
		}
	}
	return nil
}

// isNoScript reports whether err says the script cache lost a script.
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
