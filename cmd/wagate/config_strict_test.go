package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// strictBase is a config that loads: one tenant, one Meta account.
const strictBase = `{
  "tenants": [{"id": "grand-plaza", "senders": ["+15550001000"], %TENANT%
               "tokens": [{"token": "plain-staff-token", "role": "staff"}]}],
  "meta": {"app_secret": "s", "verify_token": "v",
           "accounts": [{"name": "meta", "access_token": "t", "numbers": {"+15550001000": "1001"} %ACCOUNT%}]},
  "routes": {"+15550001000": {"fallback": ["hold"] %ROUTE%}}
  %TOP%
}`

// writeConfig writes strictBase with its holes filled (each "" or ",
// <more fields>") and returns the file's path.
func writeConfig(t *testing.T, top, tenant, account, route string) string {
	t.Helper()
	r := strings.NewReplacer("%TOP%", top, "%TENANT%", tenant, "%ACCOUNT%", account, "%ROUTE%", route)
	path := filepath.Join(t.TempDir(), "wagate.json")
	if err := os.WriteFile(path, []byte(r.Replace(strictBase)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigRefusesUnknownFieldsWithTheirPath(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		top, tenant, account, route string
		want                        []string // in the error; none: loads
	}{
		{name: "valid", top: `, "rates": {"default_mps": 20}`, tenant: `"max_queued": 10,`},
		{name: "field names match in any case, as encoding/json does", top: `, "Rates": {"Default_MPS": 20}`},
		{name: "typo at the top", top: `, "rate": {"default_mps": 20}`,
			want: []string{`config: unknown field "rate" at the top level`, `did you mean "rates"?`}},
		{name: "typo in a tenant", tenant: `"max_queue": 10,`,
			want: []string{`config: unknown field "max_queue" at tenants[0]`, `did you mean "max_queued"?`}},
		{name: "typo in a nested list", account: `, "wabaid": "2001"`,
			want: []string{`config: unknown field "wabaid" at meta.accounts[0]`, `did you mean "waba_id"?`}},
		{name: "typo in a map's value", route: `, "secundary": "gallabox"`,
			want: []string{`config: unknown field "secundary" at routes["+15550001000"]`}},
		{name: "every unknown field at once", top: `, "rate": {}, "dispatch": {"lease": "5s"}`,
			want: []string{`unknown field "rate" at the top level`, `unknown field "lease" at dispatch`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc, err := loadFileConfig(writeConfig(t, tc.top, tc.tenant, tc.account, tc.route))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused a valid config: %v", err)
				}
				if fc.Rates.DefaultMPS != 20 && tc.top != "" {
					t.Fatalf("rates.default_mps = %v, want 20", fc.Rates.DefaultMPS)
				}
				return
			}
			if err == nil {
				t.Fatalf("loaded; want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
}

func TestConfigEnvSecretsNameTheirVariable(t *testing.T) {
	const value = "the-secret-value-9f2c"
	for _, tc := range []struct {
		name    string
		env     map[string]string // set before loading; "" value: set empty
		account string
		want    string // in the error; "": loads, with the value resolved
	}{
		{name: "set", env: map[string]string{"WAGATE_T_META_TOKEN": value}},
		{name: "unset", want: "config: meta.accounts[0].access_token: environment variable WAGATE_T_META_TOKEN is not set"},
		{name: "empty", env: map[string]string{"WAGATE_T_META_TOKEN": ""},
			want: "config: meta.accounts[0].access_token: environment variable WAGATE_T_META_TOKEN is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WAGATE_T_META_TOKEN", "") // restored after the test
			os.Unsetenv("WAGATE_T_META_TOKEN")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			path := filepath.Join(t.TempDir(), "wagate.json")
			cfg := strings.Replace(strings.NewReplacer("%TOP%", "", "%TENANT%", "", "%ACCOUNT%", "", "%ROUTE%", "").Replace(strictBase),
				`"access_token": "t"`, `"access_token": "env:WAGATE_T_META_TOKEN"`, 1)
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			fc, err := loadFileConfig(path)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := fc.Meta.Accounts[0].AccessToken; got != value {
					t.Fatalf("access_token %q, want $WAGATE_T_META_TOKEN", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestConfigSyntaxErrorSaysWhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wagate.json")
	os.WriteFile(path, []byte("{\n  \"tenants\": [\n    {\"id\": \"a\",}\n  ]\n}"), 0o600)
	_, err := loadFileConfig(path)
	if err == nil || !strings.Contains(err.Error(), "line 3, column 16") {
		t.Fatalf("error %v, want the line and column of the stray comma", err)
	}
}
