package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/ingest"
	"github.com/wagate/wagate/internal/netguard"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/redis"
)

// The demo tenant of `wagate dev`.
const (
	devTenant      = "demo-hotel"
	devStaffToken  = "dev-staff-token"
	devAdminToken  = "dev-admin-token"
	devSender      = "+15550001000"
	devPhoneID     = "100000000000001"
	devWABA        = "200000000000001"
	devAppSecret   = "dev-app-secret"
	devVerifyToken = "dev-verify-token"
	devSimToken    = "dev-sim-access-token"
	// The simulated Gallabox webhook's Secret and ChatApp callback URL's
	// token, which the demo accounts verify their status callbacks with.
	devGallaboxWebhookSecret = "dev-gallabox-webhook-secret"
	devChatAppWebhookToken   = "dev-chatapp-webhook-token"
)

// devNumbers returns the demo tenant's n numbers: +15550001000 (phone
// number id 100000000000001), +15550001001 (…002) and on.
func devNumbers(n int) []sim.Number {
	out := make([]sim.Number, max(n, 1))
	for i := range out {
		out[i] = sim.Number{PhoneNumberID: fmt.Sprintf("1000000000%05d", i+1), DisplayPhoneNumber: fmt.Sprintf("1555000%04d", 1000+i), WABAID: devWABA}
	}
	return out
}

// simFlags configure the simulator of `wagate dev` and `wagate sim`.
type simFlags struct {
	addr       string
	webhooks   bool
	latency    time.Duration
	errorRate  float64
	throughput float64
	burst      int
	batch      int
	failRatio  float64
	readRatio  float64
}

func (s *simFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.addr, "sim", env("WAGATE_SIM_ADDR", "127.0.0.1:8090"), "provider simulator listen address (WAGATE_SIM_ADDR)")
	fs.DurationVar(&s.latency, "sim-latency", envDuration("WAGATE_SIM_LATENCY", 0), "simulator: added latency of each send")
	fs.Float64Var(&s.errorRate, "sim-error-rate", 0, "simulator: fraction of sends answered with a transient error (131000)")
	fs.Float64Var(&s.throughput, "sim-throughput", 0, "simulator: messages per second per number before 130429 (0: unlimited)")
	fs.IntVar(&s.burst, "sim-throughput-burst", 0, "simulator: how many of a number's messages may come at once (0: a second's worth)")
	fs.IntVar(&s.batch, "sim-webhook-batch", 1, "simulator: statuses per webhook POST (Meta sends 1; more batches them)")
	fs.Float64Var(&s.failRatio, "sim-fail-ratio", 0, "simulator: fraction of messages that fail (131026) instead of being delivered")
	fs.Float64Var(&s.readRatio, "sim-read-ratio", 1, "simulator: fraction of delivered messages that get read")
	fs.BoolVar(&s.webhooks, "sim-webhooks", true, "simulator: post status webhooks (off: messages stay \"sent\")")
}

func (s *simFlags) config(webhookURL, appSecret, accessToken string, numbers []sim.Number) sim.Config {
	if !s.webhooks {
		webhookURL = ""
	}
	read := s.readRatio
	if read == 0 {
		read = -1 // the simulator's zero means its default of 1
	}
	return sim.Config{
		Addr: s.addr, Numbers: numbers, AccessToken: accessToken, AppSecret: appSecret, WebhookURL: webhookURL,
		Latency: s.latency, ErrorRate: s.errorRate, Throughput: s.throughput, ThroughputBurst: s.burst,
		MaxStatusesPerWebhook: s.batch, FailRatio: s.failRatio, ReadRatio: read,
	}
}

// devConfig is the demo tenant with its numbers, routed to the simulator
// at simURL, each number at mps.
func devConfig(simURL string, numbers []sim.Number, mps float64) *fileConfig {
	fc := &fileConfig{
		Tenants: []tenantConfig{{
			ID:     devTenant,
			Tokens: []tokenConfig{{Token: devStaffToken, Role: ingest.RoleStaff}, {Token: devAdminToken, Role: ingest.RoleAdmin}},
		}},
		Meta: metaConfig{
			AppSecret: devAppSecret, VerifyToken: devVerifyToken,
			Accounts: []metaAccount{{Name: "meta", BaseURL: simURL, Version: "v23.0", AccessToken: devSimToken,
				Numbers: map[string]string{}, WABAID: devWABA}},
		},
		Rates: rateConfig{DefaultMPS: mps},
	}
	for _, n := range numbers {
		fc.Tenants[0].Senders = append(fc.Tenants[0].Senders, "+"+n.DisplayPhoneNumber)
		fc.Meta.Accounts[0].Numbers["+"+n.DisplayPhoneNumber] = n.PhoneNumberID
	}
	// The simulator also plays Gallabox, ChatApp and an SMS provider:
	// while Meta's breaker is open, messages go through Gallabox (or
	// ChatApp, with -secondary chatapp), then by SMS; both post their
	// status callbacks back.
	fc.Gallabox.Accounts = []gallaboxAccount{{Name: "gallabox", BaseURL: simURL, APIKey: sim.DefaultGallaboxAPIKey,
		APISecret: sim.DefaultGallaboxAPISecret, Channels: map[string]string{}, WebhookSecret: devGallaboxWebhookSecret}}
	fc.ChatApp.Accounts = []chatappAccount{{Name: "chatapp", Endpoint: simURL, AccessKeyID: sim.DefaultChatAppAccessKeyID,
		AccessKeySecret: sim.DefaultChatAppAccessKeySecret, WebhookToken: devChatAppWebhookToken}}
	fc.SMS.Accounts = []smsAccount{{Name: "sms", BaseURL: simURL, AccountSID: sim.DefaultSMSAccountSID,
		AuthToken: sim.DefaultSMSAuthToken, DefaultFrom: devSender}}
	fc.Routes = map[string]routeConfig{}
	for _, sender := range fc.Tenants[0].Senders {
		fc.Gallabox.Accounts[0].Channels[sender] = "dev-channel"
		fc.Routes[sender] = routeConfig{Secondary: "gallabox", SMS: "sms", Fallback: []string{"secondary", "sms", "hold"}}
	}
	return fc
}

// devRates sets the rates of the demo tenant's first numbers from list
// ("1000,80").
func devRates(fc *fileConfig, list string) error {
	if list == "" {
		return nil
	}
	senders := fc.Tenants[0].Senders
	fc.Rates.PerNumber = map[string]float64{}
	for i, f := range strings.Split(list, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) {
			return fmt.Errorf("-rates %q: want positive messages per second, comma-separated", list)
		}
		if i >= len(senders) {
			return fmt.Errorf("-rates %q names %d numbers; -numbers gives %d", list, i+1, len(senders))
		}
		fc.Rates.PerNumber[senders[i]] = v
	}
	return nil
}

// reachable turns a listen address into one a client can dial.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func cmdDev(args []string) error {
	fs := flag.NewFlagSet("dev", flag.ExitOnError)
	var g gatewayFlags
	var sf simFlags
	g.register(fs)
	sf.register(fs)
	nNumbers := fs.Int("numbers", 1, "the demo tenant's numbers: +15550001000, +15550001001…")
	secondary := fs.String("secondary", "gallabox", "the demo numbers' secondary provider while Meta's breaker is open: gallabox or chatapp")
	mps := fs.Float64("rate", 80, "each number's messages per second (Meta: 80, 1000 after upgrade)")
	perNumber := fs.String("rates", "", "the first numbers' messages per second in order, comma-separated (1000,80: the first at 1000, the second at 80; the others at -rate)")
	fs.Parse(args)
	if g.media.signingKey == "" {
		g.media.signingKey = devMediaSigningKey // links survive a dev restart
	}
	if g.webhookAllow == "" {
		// A developer's webhook receiver runs on the same machine.
		g.webhookAllow = strings.Join(netguard.Loopback(), ",")
	}
	log, err := startLogging(&g, fs, os.Stderr)
	if err != nil {
		return err
	}
	numbers := devNumbers(*nNumbers)

	catalogue, err := demoCatalogue()
	if err != nil {
		return err
	}
	if *secondary != "gallabox" && *secondary != "chatapp" {
		return fmt.Errorf("-secondary %q: want gallabox or chatapp", *secondary)
	}
	scfg := sf.config("http://"+reachable(g.httpAddr)+"/webhooks/meta", devAppSecret, devSimToken, numbers)
	scfg.Templates = map[string][]message.Template{devWABA: catalogue}
	if sf.webhooks {
		// The Gallabox and ChatApp accounts' callbacks come back to the
		// API, as Meta's do.
		scfg.GallaboxWebhookURL, scfg.GallaboxWebhookSecret = "http://"+reachable(g.httpAddr)+"/webhooks/gallabox", devGallaboxWebhookSecret
		scfg.ChatAppWebhookURL = "http://" + reachable(g.httpAddr) + "/webhooks/chatapp?token=" + devChatAppWebhookToken
	}
	simulator, err := sim.New(scfg, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	if err := simulator.Start(); err != nil {
		return err
	}
	fc := devConfig("http://"+reachable(simulator.Addr()), numbers, *mps)
	if err := devRates(fc, *perNumber); err != nil {
		simulator.Shutdown(context.Background())
		return err
	}
	for n, rc := range fc.Routes {
		rc.Secondary = *secondary
		fc.Routes[n] = rc
	}
	gw, err := startGateway(&g, fc, log)
	if err != nil {
		simulator.Shutdown(context.Background())
		return err
	}
	// The demo catalogue is the tenant's from the start (the template sync
	// would also bring it from the simulated account within minutes);
	// templates created through the API survive a restart.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err = gw.store.PutTemplates(ctx, devTenant, catalogue)
	if err == nil {
		err = devSettings(ctx, gw.store)
	}
	if err == nil {
		err = devStaff(ctx, gw.store)
	}
	cancel()
	if err != nil {
		return fmt.Errorf("demo catalogue: %w", err)
	}
	api := "http://" + reachable(gw.api.Addr())
	fmt.Printf(`wagate dev is running
  API                 %s   (tenant %s: staff token %s, admin token %s)
  inbox               %s/inbox   (alice / bruno, password %s, tenant %s)
  sender              %s   (Meta phone number id %s; %d number(s) at %v mps)
  provider simulator  http://%s   (Meta Cloud API v23.0, Gallabox, ChatApp, SMS; status webhooks to %s/webhooks/{meta,gallabox,chatapp})
  secondary provider  %s   (while Meta's breaker is open; -secondary gallabox|chatapp)
  Redis               %s   (keys %s:*)
  ClickHouse          %s   (database %s, table message_events)
  ops                 %s   (/metrics, /healthz, /readyz, /debug/pprof/)

Try: a guest writes to the hotel (the simulator posts Meta's signed webhook), which opens the 24-hour window:
  curl -s -X POST http://%s/_sim/inbound -d '{"phone_number_id":"%s","from":"+1234567890","name":"John Smith","text":"Hi! Can I check in early?"}'
then answer in free form:
  curl -s -X POST %s/api/v1/whatsapp/messages/send -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{"guest_phone":"+1234567890","message_type":"text","content":{"text":"Welcome to Grand Plaza Hotel! Your room is ready."}}'
  curl -s %s/api/v1/whatsapp/messages/<message_id>/status -H 'Authorization: Bearer %s'
  curl -s '%s/api/v1/whatsapp/conversations?guest_phone=%%2B1234567890' -H 'Authorization: Bearer %s'

Ctrl-C stops it.
`, api, devTenant, devStaffToken, devAdminToken, api, devStaffPassword, devTenant, devSender, devPhoneID, len(numbers), *mps, simulator.Addr(), api, *secondary, redactURL(g.redisURL), g.prefix,
		g.clickhouse, g.chDatabase, gw.opsAddr(), simulator.Addr(), devPhoneID, api, devStaffToken, api, devStaffToken, api, devStaffToken)

	waitForSignal()
	log.Info("shutting down")
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = gw.shutdown(ctx)
	simulator.Shutdown(ctx)
	return err
}

func cmdSim(args []string) error {
	fs := flag.NewFlagSet("sim", flag.ExitOnError)
	var sf simFlags
	sf.register(fs)
	webhook := fs.String("webhook", env("WAGATE_SIM_WEBHOOK_URL", "http://127.0.0.1:8080/webhooks/meta"), "where status webhooks go")
	gallaboxHook := fs.String("gallabox-webhook", env("WAGATE_SIM_GALLABOX_WEBHOOK_URL", "http://127.0.0.1:8080/webhooks/gallabox"),
		"where Gallabox's status webhooks go (empty: none)")
	gallaboxSecret := fs.String("gallabox-webhook-secret", env("WAGATE_SIM_GALLABOX_WEBHOOK_SECRET", devGallaboxWebhookSecret),
		"signs Gallabox's status webhooks (x-gallabox-signature)")
	chatappHook := fs.String("chatapp-webhook", env("WAGATE_SIM_CHATAPP_WEBHOOK_URL", "http://127.0.0.1:8080/webhooks/chatapp?token="+devChatAppWebhookToken),
		"where ChatApp's status reports go, the token in the URL (empty: none)")
	secret := fs.String("app-secret", env("WAGATE_SIM_APP_SECRET", devAppSecret), "signs the webhooks (X-Hub-Signature-256)")
	token := fs.String("access-token", env("WAGATE_SIM_ACCESS_TOKEN", devSimToken), "the Bearer token sends must carry")
	var numbers []sim.Number
	fs.Func("number", "a business number as <phone number id>:<digits> (repeat for more; default 100000000000001:15550001000)", func(v string) error {
		id, digits, ok := strings.Cut(v, ":")
		if !ok || id == "" || digits == "" {
			return fmt.Errorf("want <phone number id>:<digits>, got %q", v)
		}
		numbers = append(numbers, sim.Number{PhoneNumberID: id, DisplayPhoneNumber: digits, WABAID: devWABA})
		return nil
	})
	fs.Parse(args)
	if len(numbers) == 0 {
		numbers = devNumbers(1)
	}
	catalogue, err := demoCatalogue()
	if err != nil {
		return err
	}
	scfg := sf.config(*webhook, *secret, *token, numbers)
	scfg.Templates = map[string][]message.Template{devWABA: catalogue}
	if sf.webhooks {
		scfg.GallaboxWebhookURL, scfg.GallaboxWebhookSecret, scfg.ChatAppWebhookURL = *gallaboxHook, *gallaboxSecret, *chatappHook
	}
	simulator, err := sim.New(scfg, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	if err := simulator.Start(); err != nil {
		return err
	}
	fmt.Printf("provider simulator (Meta Cloud API) at http://%s, %d number(s), webhooks to %q\n", simulator.Addr(), len(numbers), *webhook)
	waitForSignal()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return simulator.Shutdown(ctx)
}

// devSettings gives the demo tenant seed 001's suggestions for a closed
// window, unless its admins set their own settings already.
func devSettings(ctx context.Context, store *redis.Store) error {
	doc, err := store.TenantDoc(ctx, devTenant, redis.DocSettings)
	if err != nil || doc != nil {
		return err
	}
	return store.PutTenantDoc(ctx, devTenant, redis.DocSettings, []byte(`{"suggested_templates":["service_followup","general_inquiry"]}`))
}
