package inbound

import (
	"context"
	"fmt"
	"time"

	"github.com/wagate/wagate/provider"
)

// HandleMessagingLimit records the messaging limit Meta announced for an
// account's business portfolio (business_capability_update,
// phone_number_quality_update): the dispatcher holds business-initiated
// sends by it from then on. An account of no configured portfolio is
// skipped.
func (b *batch) HandleMessagingLimit(l *provider.MessagingLimit) error {
	pf, ok := b.p.cfg.Portfolios[l.AccountID]
	if !ok {
		b.p.log.Info("messaging limit of an account of no portfolio skipped", "account", l.AccountID, "limit", l.Limit)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), templateStatusTimeout)
	defer cancel()
	at := l.AtMS
	if at == 0 {
		at = time.Now().UnixMilli() // an entry without its time
	}
	recorded, err := b.p.store.SetPortfolioLimit(ctx, pf, l.Limit, at)
	if err != nil {
		return fmt.Errorf("messaging limit of %s: %w", pf, err)
	}
	if recorded {
		b.p.log.Info("portfolio messaging limit", "portfolio", pf, "account", l.AccountID, "limit", l.Limit)
	}
	return nil
}
