package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
)

// PortfolioWindow is the moving window of Meta's portfolio messaging
// limit: the unique guests started in the last 24 hours count.
const PortfolioWindow = 24 * time.Hour

// Unlimited is a messaging limit without a bound (Meta's -1).
const Unlimited = -1

// Admission says whether a business-initiated send may go now under its
// portfolio's messaging limit.
type Admission struct {
	// OK: the send may go (the guest's window is open, the guest was
	// counted already, or the portfolio is under its limit).
	OK bool
	// InWindow: the guest's window is open, the conversation is theirs:
	// admitted without a look at the portfolio (Counted and Limit unknown).
	InWindow bool
	// Counted is how many unique guests the portfolio started in the last
	// 24 hours, Limit its limit (Unlimited: none).
	Counted, Limit int
	// Until is, when not OK, when the oldest counted guest leaves the
	// window: the earliest a new guest may be started.
	Until time.Time
}

// AdmitBusinessInitiated admits a template send from sender to guest under
// portfolio's messaging limit (configured, until Meta announced one by
// webhook; SetPortfolioLimit): a guest whose 24-hour window is open costs
// nothing (the conversation is the guest's), nor does one counted within
// the last 24 hours; a new guest is counted while the portfolio is under
// its limit. It returns what it decided; the caller holds a send not OK.
func (s *Store) AdmitBusinessInitiated(ctx context.Context, portfolio, sender, guest string, configured int) (Admission, error) {
	sh := message.ShardFor(sender, s.cfg.Shards)
	now := s.nowMS()
	li, err := s.rdb.HGet(ctx, s.keys.Guest(sh, sender, guest), "li").Int64()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return Admission{}, fmt.Errorf("admit %s: %w", portfolio, err)
	}
	if li > 0 && now-li < s.cfg.Window.Milliseconds() {
		return Admission{OK: true, InWindow: true}, nil
	}
	v, err := s.scripts.portfolio.Run(ctx, s.rdb, []string{s.keys.PortfolioUsers(portfolio), s.keys.PortfolioTier(portfolio)},
		guest, now, configured, PortfolioWindow.Milliseconds()).Int64Slice()
	if err != nil {
		return Admission{}, fmt.Errorf("admit %s: %w", portfolio, err)
	}
	a := Admission{OK: v[0] == 1, Counted: int(v[1]), Limit: int(v[2])}
	if !a.OK && len(v) > 3 {
		a.Until = time.UnixMilli(v[3])
	}
	return a, nil
}

// SetPortfolioLimit records the messaging limit Meta announced at atMS for
// a portfolio (Unlimited: none); it takes the configured one's place. An
// announcement older than the one recorded (webhooks come in any order)
// changes nothing; it reports whether this one was recorded.
func (s *Store) SetPortfolioLimit(ctx context.Context, portfolio string, limit int, atMS int64) (bool, error) {
	key := s.keys.PortfolioTier(portfolio)
	prev, err := s.rdb.HGet(ctx, key, "at").Int64()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return false, fmt.Errorf("portfolio %s limit: %w", portfolio, err)
	}
	if prev > atMS {
		return false, nil
	}
	if err := s.rdb.HSet(ctx, key, "limit", strconv.Itoa(limit), "at", atMS).Err(); err != nil {
		return false, fmt.Errorf("portfolio %s limit: %w", portfolio, err)
	}
	return true, nil
}

// PortfolioLimit is the limit Meta last announced for portfolio, and
// whether it announced one.
func (s *Store) PortfolioLimit(ctx context.Context, portfolio string) (int, bool, error) {
	n, err := s.rdb.HGet(ctx, s.keys.PortfolioTier(portfolio), "limit").Int()
	if errors.Is(err, goredis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("portfolio %s limit: %w", portfolio, err)
	}
	return n, true, nil
}
