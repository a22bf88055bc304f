package inbound

import (
	"context"
	"fmt"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/store/redis"
)

// templateStatusTimeout bounds the store writes of one template status.
const templateStatusTimeout = 5 * time.Second

// HandleTemplateStatus applies a template's review outcome (Meta's
// message_template_status_update) to the templates of every tenant whose
// templates the account holds (Config.WABATenants). An account no
// tenant maps to, an event that changes nothing (FLAGGED) and a template no
// tenant knows are skipped; the template sync's listing imports the last.
func (b *batch) HandleTemplateStatus(ts *provider.TemplateStatus) error {
	status, ok := message.TemplateStatusFromMeta(ts.Event)
	tenants := b.p.cfg.WABATenants[ts.AccountID]
	if !ok || len(tenants) == 0 {
		b.p.log.Info("template status skipped", "account", ts.AccountID, "template", ts.Name, "language", ts.Language,
			"event", ts.Event, "known_event", ok, "tenants", len(tenants))
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), templateStatusTimeout)
	defer cancel()
	for _, tenant := range tenants {
		applied, err := b.p.store.SetTemplateStatus(ctx, tenant, redis.TemplateUpdate{Name: ts.Name, Language: ts.Language,
			ProviderID: ts.TemplateID, Status: status, Reason: ts.Reason, AtMS: ts.AtMS})
		if err != nil {
			return fmt.Errorf("template status of %s (%s) for %s: %w", ts.Name, ts.Language, tenant, err)
		}
		if applied {
			b.p.log.Info("template status", "tenant", tenant, "template", ts.Name, "language", ts.Language, "status", status, "reason", ts.Reason)
		}
	}
	return nil
}
