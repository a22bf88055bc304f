package redis

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// The Lua scripts, each documented (KEYS and ARGV) in its own file.
var (
	//go:embed lib.lua
	libSrc string
	//go:embed enqueue.lua
	enqueueSrc string
	//go:embed begin.lua
	beginSrc string
	//go:embed transition.lua
	transitionSrc string
	//go:embed retry.lua
	retrySrc string
	//go:embed promote.lua
	promoteSrc string
)

// scripts holds the loaded scripts. They run with EVALSHA inside pipelines;
// after a Redis restart or SCRIPT FLUSH the pipeline answers NOSCRIPT and the
// batch is sent again after load (see batcher).
type scripts struct {
	enqueue, begin, transition, retry, promote *goredis.Script
}

func newScripts() *scripts {
	return &scripts{
		enqueue:    goredis.NewScript(libSrc + enqueueSrc),
		begin:      goredis.NewScript(libSrc + beginSrc),
		transition: goredis.NewScript(libSrc + transitionSrc),
		retry:      goredis.NewScript(libSrc + retrySrc),
		promote:    goredis.NewScript(libSrc + promoteSrc),
	}
}

func (s *scripts) all() []*goredis.Script {
	return []*goredis.Script{s.enqueue, s.begin, s.transition, s.retry, s.promote}
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
