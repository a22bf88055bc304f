package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
)

// A tenant's templates live in three keys that share the tenant's hash tag,
// so that one MULTI may change them together on a Redis Cluster too:
//
//	<prefix>:t:{<tenant>}:tpl    hash  "<name>:<language>" → the template as JSON
//	<prefix>:t:{<tenant>}:tplid  hash  provider template id → "<name>:<language>"
//	<prefix>:t:{<tenant>}:tplq   zset  "<name>:<language>" waiting to be submitted, scored by when (Unix ms)
//
// Templates are written rarely and read per template send, so a read is
// one HGET and a change is an optimistic transaction (WATCH).

// ErrTemplateExists says the tenant has a template of that name and
// language already.
var ErrTemplateExists = errors.New("redis: template exists")

// TemplateRef names one language of a template.
type TemplateRef struct {
	Name     string
	Language string
}

func (r TemplateRef) field() string { return r.Name + ":" + r.Language }

func refOf(field string) TemplateRef {
	name, lang, _ := strings.Cut(field, ":")
	return TemplateRef{Name: name, Language: lang}
}

// TemplateKey is the hash of tenant's templates.
func (k *Keys) TemplateKey(tenant string) string { return k.prefix + ":t:{" + tenant + "}:tpl" }

// TemplateIDs maps tenant's provider template ids to its templates.
func (k *Keys) TemplateIDs(tenant string) string { return k.prefix + ":t:{" + tenant + "}:tplid" }

// TemplateQueue is the zset of tenant's templates waiting to be submitted
// to the provider, scored by when to try (Unix ms).
func (k *Keys) TemplateQueue(tenant string) string { return k.prefix + ":t:{" + tenant + "}:tplq" }

// checkTenant refuses a tenant id that would break the keys' hash tag.
func checkTenant(tenant string) error {
	if tenant == "" || strings.ContainsAny(tenant, "{}") {
		return fmt.Errorf("templates: tenant id %q is empty or holds braces", tenant)
	}
	return nil
}

// maxTxTries bounds the retries of a transaction whose keys changed under
// it.
const maxTxTries = 16

// templateTx runs fn in a transaction watching tenant's template keys,
// again when another writer changed them meanwhile.
func (s *Store) templateTx(ctx context.Context, tenant string, fn func(tx *goredis.Tx) error) error {
	keys := []string{s.keys.TemplateKey(tenant), s.keys.TemplateIDs(tenant), s.keys.TemplateQueue(tenant)}
	for range maxTxTries {
		err := s.rdb.Watch(ctx, fn, keys...)
		if !errors.Is(err, goredis.TxFailedErr) {
			return err
		}
	}
	return fmt.Errorf("templates of %s: too busy: %w", tenant, goredis.TxFailedErr)
}

// getTemplate reads one template through c (a client or a transaction).
func getTemplate(ctx context.Context, c goredis.Cmdable, key string, ref TemplateRef) (*message.Template, error) {
	raw, err := c.HGet(ctx, key, ref.field()).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var t message.Template
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("template %s: stored value: %w", ref.field(), err)
	}
	return &t, nil
}

func encodeTemplate(t *message.Template) (string, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("template %s: %w", t.Name, err)
	}
	return string(b), nil
}

// CreateTemplate stores t, a new submission of tenant's, as PENDING and
// queues it for submission to the provider; ErrTemplateExists when the
// tenant has the name in that language already.
func (s *Store) CreateTemplate(ctx context.Context, tenant string, t *message.Template) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	ref := TemplateRef{t.Name, t.Language}
	now := s.nowMS()
	t.Status, t.CreatedMS, t.UpdatedMS, t.ProviderID, t.RejectedReason, t.StatusAtMS = message.TemplatePending, now, now, "", "", 0
	v, err := encodeTemplate(t)
	if err != nil {
		return err
	}
	key := s.keys.TemplateKey(tenant)
	err = s.templateTx(ctx, tenant, func(tx *goredis.Tx) error {
		n, err := tx.HExists(ctx, key, ref.field()).Result()
		if err != nil {
			return err
		}
		if n {
			return ErrTemplateExists
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.HSet(ctx, key, ref.field(), v)
			p.ZAdd(ctx, s.keys.TemplateQueue(tenant), goredis.Z{Score: float64(now), Member: ref.field()})
			return nil
		})
		return err
	})
	if err != nil && !errors.Is(err, ErrTemplateExists) {
		return fmt.Errorf("create template %s: %w", ref.field(), err)
	}
	return err
}

// PutTemplates stores ts as tenant's, replacing those of the same name and
// language, without submitting them: for templates the provider holds
// already (a catalogue, an import).
func (s *Store) PutTemplates(ctx context.Context, tenant string, ts []message.Template) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	now := s.nowMS()
	p := s.rdb.TxPipeline()
	for i := range ts {
		t := ts[i]
		if t.CreatedMS == 0 {
			t.CreatedMS = now
		}
		t.UpdatedMS = now
		v, err := encodeTemplate(&t)
		if err != nil {
			return err
		}
		ref := TemplateRef{t.Name, t.Language}
		p.HSet(ctx, s.keys.TemplateKey(tenant), ref.field(), v)
		p.ZRem(ctx, s.keys.TemplateQueue(tenant), ref.field())
		if t.ProviderID != "" {
			p.HSet(ctx, s.keys.TemplateIDs(tenant), t.ProviderID, ref.field())
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("put templates of %s: %w", tenant, err)
	}
	return nil
}

// Template returns tenant's template name in language, or ErrNotFound.
func (s *Store) Template(ctx context.Context, tenant, name, language string) (*message.Template, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	t, err := getTemplate(ctx, s.rdb, s.keys.TemplateKey(tenant), TemplateRef{name, language})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("template %s (%s): %w", name, language, err)
	}
	return t, err
}

// TemplateFilter picks templates from a listing; zero fields match all.
type TemplateFilter struct {
	Name     string
	Language string
	// Category matches Meta's category regardless of case, or the
	// template's group ("guest_services").
	Category string
	Status   message.TemplateStatus
}

func (f *TemplateFilter) match(t *message.Template) bool {
	return (f.Name == "" || t.Name == f.Name) &&
		(f.Language == "" || strings.EqualFold(t.Language, f.Language)) &&
		(f.Category == "" || strings.EqualFold(string(t.Category), f.Category) || t.Group == f.Category) &&
		(f.Status == "" || t.Status == f.Status)
}

// Templates returns tenant's templates that match f, by name and then
// language.
func (s *Store) Templates(ctx context.Context, tenant string, f TemplateFilter) ([]message.Template, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	all, err := s.rdb.HGetAll(ctx, s.keys.TemplateKey(tenant)).Result()
	if err != nil {
		return nil, fmt.Errorf("templates of %s: %w", tenant, err)
	}
	out := make([]message.Template, 0, len(all))
	for field, raw := range all {
		if f.Name != "" && refOf(field).Name != f.Name {
			continue
		}
		var t message.Template
		if err := json.Unmarshal([]byte(raw), &t); err != nil {
			return nil, fmt.Errorf("templates of %s: %s: %w", tenant, field, err)
		}
		if f.match(&t) {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Language < out[j].Language
	})
	return out, nil
}

// TemplateUpdate is a status the provider reported for a template.
type TemplateUpdate struct {
	// Name and Language find the template; ProviderID does when they are
	// empty or name no template of the tenant's.
	Name, Language, ProviderID string
	Status                     message.TemplateStatus
	// Reason explains a rejection, pause or disabling; an update to
	// APPROVED or PENDING clears the old one.
	Reason string
	// AtMS is when the provider reported it (0: unknown, applies always);
	// an update older than the last one applied is ignored.
	AtMS int64
}

// SetTemplateStatus applies u to tenant's template. It reports false, and
// changes nothing, when no template matches or u is older than the status
// it has.
func (s *Store) SetTemplateStatus(ctx context.Context, tenant string, u TemplateUpdate) (bool, error) {
	if err := checkTenant(tenant); err != nil {
		return false, err
	}
	applied := false
	key := s.keys.TemplateKey(tenant)
	err := s.templateTx(ctx, tenant, func(tx *goredis.Tx) error {
		applied = false
		ref := TemplateRef{u.Name, u.Language}
		t, err := getTemplate(ctx, tx, key, ref)
		if errors.Is(err, ErrNotFound) && u.ProviderID != "" {
			field, err2 := tx.HGet(ctx, s.keys.TemplateIDs(tenant), u.ProviderID).Result()
			if errors.Is(err2, goredis.Nil) {
				return nil
			}
			if err2 != nil {
				return err2
			}
			ref = refOf(field)
			t, err = getTemplate(ctx, tx, key, ref)
		}
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if u.AtMS > 0 && u.AtMS < t.StatusAtMS {
			return nil
		}
		t.Status, t.RejectedReason = u.Status, u.Reason
		if u.AtMS > 0 {
			t.StatusAtMS = u.AtMS
		}
		if u.ProviderID != "" {
			t.ProviderID = u.ProviderID
		}
		t.UpdatedMS = s.nowMS()
		v, err := encodeTemplate(t)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.HSet(ctx, key, ref.field(), v)
			if t.ProviderID != "" {
				p.HSet(ctx, s.keys.TemplateIDs(tenant), t.ProviderID, ref.field())
			}
			return nil
		})
		applied = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("template status of %s (%s): %w", u.Name, u.Language, err)
	}
	return applied, nil
}

// DueTemplateSubmissions returns up to limit of tenant's templates whose
// submission is due at now.
func (s *Store) DueTemplateSubmissions(ctx context.Context, tenant string, now time.Time, limit int) ([]TemplateRef, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	fields, err := s.rdb.ZRangeByScore(ctx, s.keys.TemplateQueue(tenant), &goredis.ZRangeBy{
		Min: "-inf", Max: fmt.Sprint(now.UnixMilli()), Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("due templates of %s: %w", tenant, err)
	}
	out := make([]TemplateRef, len(fields))
	for i, f := range fields {
		out[i] = refOf(f)
	}
	return out, nil
}

// RetryTemplateSubmission puts off ref's submission until due.
func (s *Store) RetryTemplateSubmission(ctx context.Context, tenant string, ref TemplateRef, due time.Time) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	// XX: a template whose submission finished meanwhile stays out.
	if err := s.rdb.ZAddXX(ctx, s.keys.TemplateQueue(tenant), goredis.Z{Score: float64(due.UnixMilli()), Member: ref.field()}).Err(); err != nil {
		return fmt.Errorf("retry template %s: %w", ref.field(), err)
	}
	return nil
}

// Submission is what came of submitting a template to the provider.
type Submission struct {
	// ProviderID is the provider's id; empty when the provider refused it.
	ProviderID string
	// Status is the provider's answer (PENDING, or APPROVED at once), or
	// REJECTED for a refusal. A status a webhook recorded meanwhile stays.
	Status   message.TemplateStatus
	Category message.TemplateCategory
	// Reason explains a refusal.
	Reason string
}

// FinishTemplateSubmission records the outcome of ref's submission and
// takes it off the queue.
func (s *Store) FinishTemplateSubmission(ctx context.Context, tenant string, ref TemplateRef, sub Submission) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	key := s.keys.TemplateKey(tenant)
	err := s.templateTx(ctx, tenant, func(tx *goredis.Tx) error {
		t, err := getTemplate(ctx, tx, key, ref)
		if errors.Is(err, ErrNotFound) {
			_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.ZRem(ctx, s.keys.TemplateQueue(tenant), ref.field())
				return nil
			})
			return err
		}
		if err != nil {
			return err
		}
		// The review's webhook may have beaten this answer here: a status
		// it recorded is newer than the submission's.
		if t.StatusAtMS == 0 && (t.Status == message.TemplatePending || sub.Status == message.TemplateRejected) {
			t.Status, t.RejectedReason = sub.Status, sub.Reason
		}
		if sub.ProviderID != "" {
			t.ProviderID = sub.ProviderID
		}
		if sub.Category != "" {
			t.Category = sub.Category
		}
		t.UpdatedMS = s.nowMS()
		return s.putSettled(ctx, tx, tenant, ref, t)
	})
	if err != nil {
		return fmt.Errorf("finish template submission %s: %w", ref.field(), err)
	}
	return nil
}

// putSettled writes t, whose submission the provider has answered, in tx:
// the template, out of the submission queue, and its provider id's index.
func (s *Store) putSettled(ctx context.Context, tx *goredis.Tx, tenant string, ref TemplateRef, t *message.Template) error {
	v, err := encodeTemplate(t)
	if err != nil {
		return err
	}
	_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, s.keys.TemplateKey(tenant), ref.field(), v)
		p.ZRem(ctx, s.keys.TemplateQueue(tenant), ref.field())
		if t.ProviderID != "" {
			p.HSet(ctx, s.keys.TemplateIDs(tenant), t.ProviderID, ref.field())
		}
		return nil
	})
	return err
}

// SyncResult counts what SyncProviderTemplates did.
type SyncResult struct {
	// Updated templates changed status, id or category; Imported ones
	// were not known (made in WhatsApp Manager, say).
	Updated, Imported int
}

// SyncProviderTemplates brings tenant's templates in step with ts, the
// provider's listing (name, language, status, category, reason, id): known
// ones take the provider's status and leave the submission queue; unknown
// ones are imported as they are when importUnknown, else left alone (an
// account several tenants share holds the others' templates too, which
// are none of this tenant's business). A listing is the provider's state
// now, so it applies over any webhook seen before it.
func (s *Store) SyncProviderTemplates(ctx context.Context, tenant string, ts []message.Template, importUnknown bool) (SyncResult, error) {
	var res SyncResult
	if err := checkTenant(tenant); err != nil {
		return res, err
	}
	key := s.keys.TemplateKey(tenant)
	for i := range ts {
		pt := ts[i]
		ref := TemplateRef{pt.Name, pt.Language}
		var updated, imported bool
		err := s.templateTx(ctx, tenant, func(tx *goredis.Tx) error {
			updated, imported = false, false
			now := s.nowMS()
			t, err := getTemplate(ctx, tx, key, ref)
			switch {
			case errors.Is(err, ErrNotFound) && !importUnknown:
				return nil
			case errors.Is(err, ErrNotFound):
				t = &pt
				t.CreatedMS, t.UpdatedMS = now, now
				imported = true
			case err != nil:
				return err
			default:
				_, err := tx.ZScore(ctx, s.keys.TemplateQueue(tenant), ref.field()).Result()
				inQueue := err == nil
				if err != nil && !errors.Is(err, goredis.Nil) {
					return err
				}
				if t.Status == pt.Status && t.ProviderID == pt.ProviderID && t.RejectedReason == pt.RejectedReason &&
					(pt.Category == "" || t.Category == pt.Category) && !inQueue {
					return nil
				}
				t.Status, t.ProviderID, t.RejectedReason, t.UpdatedMS = pt.Status, pt.ProviderID, pt.RejectedReason, now
				if pt.Category != "" {
					t.Category = pt.Category
				}
				updated = true
			}
			return s.putSettled(ctx, tx, tenant, ref, t)
		})
		if err != nil {
			return res, fmt.Errorf("sync template %s: %w", ref.field(), err)
		}
		if updated {
			res.Updated++
		}
		if imported {
			res.Imported++
		}
	}
	return res, nil
}
