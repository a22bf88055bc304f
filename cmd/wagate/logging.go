package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// newLogger returns the process's logger: format "text" (key=value) or
// "json" (one JSON object a line, for log collectors), at level.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}

// redactURL hides the password of a URL ("redis://:xxxxx@host:6379/0")
// for log lines and messages. A URL that does not parse may still hold
// one: everything up to its last "@" is hidden.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndexByte(raw, '@'); i >= 0 {
			return "xxxxx@" + raw[i+1:]
		}
		return raw
	}
	return u.Redacted()
}

// redisLogger carries go-redis's own messages (pool and reconnection
// trouble) into the process's logger, so that -log-format json gets no
// line of another format.
type redisLogger struct{ log *slog.Logger }

// Printf logs one go-redis message as a warning: it only reports trouble.
func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

// startLogging settles g's flags once fs is parsed and returns the
// process's logger on w, made the default of log/slog and of the log
// package, and go-redis's: every line of the process in one format.
func startLogging(g *gatewayFlags, fs *flag.FlagSet, w io.Writer) (*slog.Logger, error) {
	notice, err := g.settle(fs)
	if err != nil {
		return nil, err
	}
	log, err := newLogger(w, g.logLevel, g.logFormat)
	if err != nil {
		return nil, err
	}
	slog.SetDefault(log)
	goredis.SetLogger(redisLogger{log})
	if notice != "" {
		log.Warn(notice)
	}
	return log, nil
}
