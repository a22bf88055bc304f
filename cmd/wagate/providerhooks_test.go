package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/wagate/wagate/ingest"
	"github.com/wagate/wagate/provider/sim"
)

// TestProviderWebhookConfig: the accounts' webhook secrets, region and
// template codes load from the config file (secrets from the environment
// too), and only accounts with a secret take callbacks, under their names.
func TestProviderWebhookConfig(t *testing.T) {
	t.Setenv("WAGATE_TEST_GB_HOOK", "gb-secret-from-env")
	for _, tc := range []struct {
		name string
		top  string
		want []ingest.ProviderWebhook
		err  string
	}{
		{name: "none", top: ``},
		{name: "both, named and not", top: `, "gallabox": {"accounts": [
			{"name": "gallabox-eu", "api_key": "k", "api_secret": "s", "channels": {"+15550001000": "ch1"}, "webhook_secret": "env:WAGATE_TEST_GB_HOOK"},
			{"name": "gallabox-us", "api_key": "k", "api_secret": "s", "channels": {"+15550001000": "ch2"}}]},
			"chatapp": {"accounts": [{"access_key_id": "a", "access_key_secret": "b", "region": "ap-southeast-1", "numbers": ["+15550001000"],
			"webhook_token": "0123456789abcdef-_.~", "template_codes": {"welcome_checkin": {"en": "744c4b5c79c9"}}}]}`,
			want: []ingest.ProviderWebhook{{Kind: "gallabox", Name: "gallabox-eu", Secret: "gb-secret-from-env"},
				{Kind: "chatapp", Name: "chatapp", Secret: "0123456789abcdef-_.~"}}},
		{name: "a short chatapp token", top: `, "chatapp": {"accounts": [{"access_key_id": "a", "access_key_secret": "b", "webhook_token": "short"}]}`,
			err: "chatapp.accounts[0].webhook_token must be 16 to 128"},
		{name: "a chatapp token that needs escaping", top: `, "chatapp": {"accounts": [{"access_key_id": "a", "access_key_secret": "b", "webhook_token": "0123456789abcdef&x=1"}]}`,
			err: "chatapp.accounts[0].webhook_token must be 16 to 128"},
		{name: "an unset secret variable", top: `, "gallabox": {"accounts": [{"api_key": "k", "api_secret": "s", "channels": {"+15550001000": "c"}, "webhook_secret": "env:WAGATE_TEST_UNSET_HOOK"}]}`,
			err: "gallabox.accounts[0].webhook_secret: environment variable WAGATE_TEST_UNSET_HOOK is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc, err := loadFileConfig(writeConfig(t, tc.top, "", "", ""))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "short") || strings.Contains(err.Error(), "&x=1") {
					t.Fatalf("the error repeats the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fc.providerWebhooks(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("webhooks %+v\nwant %+v", got, tc.want)
			}
			if _, err := fc.routes(nil); err != nil {
				t.Fatal(err)
			}
			if len(fc.ChatApp.Accounts) > 0 && fc.ChatApp.Accounts[0].TemplateCodes["welcome_checkin"]["en"] != "744c4b5c79c9" {
				t.Fatalf("template codes %v", fc.ChatApp.Accounts[0].TemplateCodes)
			}
		})
	}
}

// TestDevConfigTakesTheSimulatorsCallbacks: `wagate dev`'s Gallabox and
// ChatApp accounts verify their callbacks with what it gives the
// simulator to sign them with.
func TestDevConfigTakesTheSimulatorsCallbacks(t *testing.T) {
	fc := devConfig("http://127.0.0.1:8090", devNumbers(2), 80)
	if err := fc.validate(); err != nil {
		t.Fatal(err)
	}
	want := []ingest.ProviderWebhook{{Kind: "gallabox", Name: "gallabox", Secret: devGallaboxWebhookSecret},
		{Kind: "chatapp", Name: "chatapp", Secret: devChatAppWebhookToken}}
	if got := fc.providerWebhooks(); !reflect.DeepEqual(got, want) {
		t.Fatalf("webhooks %+v", got)
	}
	if a := fc.ChatApp.Accounts[0]; a.AccessKeyID != sim.DefaultChatAppAccessKeyID || a.AccessKeySecret != sim.DefaultChatAppAccessKeySecret {
		t.Fatalf("chatapp account %+v", a)
	}
	r, err := fc.routes(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range fc.Tenants[0].Senders {
		if rt := r[n]; rt == nil || rt.Secondary == nil || rt.Secondary.Name() != "gallabox" {
			t.Fatalf("route of %s: %+v", n, rt)
		}
	}
}
