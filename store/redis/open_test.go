package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/store/redis/redistest"
)

// TestOpenURLs: the URL picks the client (one server, a Cluster by seed
// nodes, Sentinel with its master's name); bad ones are refused without
// their password in the error.
func TestOpenURLs(t *testing.T) {
	for _, c := range []struct {
		url, kind, addr, err string
	}{
		{"redis://127.0.0.1:6379/0", "single", "127.0.0.1:6379", ""},
		{"redis+cluster://127.0.0.1:7100,127.0.0.1:7101", "cluster", "127.0.0.1:7100,127.0.0.1:7101", ""},
		{"redis+cluster://:s3cret@10.0.0.1,10.0.0.2:7000", "cluster", "10.0.0.1:6379,10.0.0.2:7000", ""},
		{"redis+sentinel://user:s3cret@10.0.0.1:26379,10.0.0.2:26379/mymaster/2", "sentinel", "10.0.0.1:26379,10.0.0.2:26379/mymaster", ""},
		{"redis+cluster://", "", "", "at least one host"},
		{"redis+cluster://:s3cret@h:1/3", "", "", "one database"},
		{"redis+sentinel://:s3cret@h:26379", "", "", "master's name"},
		{"redis+sentinel://:s3cret@h:26379/m/x", "", "", "not a number"},
		{"127.0.0.1:6379", "", "", "no scheme"},
	} {
		rdb, addr, err := newClient(c.url)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s: error %v, want one saying %q without the password", c.url, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		kind := "single"
		switch o := rdb.(type) {
		case *goredis.ClusterClient:
			kind = "cluster"
		case *goredis.Client:
			if o.Options().Addr == "FailoverClient" { // go-redis names a Sentinel client so
				kind = "sentinel"
			}
		}
		if kind != c.kind || addr != c.addr {
			t.Errorf("%s: %s at %q, want %s at %q", c.url, kind, addr, c.kind, c.addr)
		}
		rdb.Close()
	}
}

// TestOpenACluster: Open reaches the test cluster's every master, and the
// store's functions are loaded on each.
func TestOpenACluster(t *testing.T) {
	redistest.ClusterClient(t) // fails when the cluster is not there
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb, err := Open(ctx, redistest.ClusterURL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	cc, ok := rdb.(*goredis.ClusterClient)
	if !ok {
		t.Fatalf("Open gave a %T for a cluster url", rdb)
	}
	s, err := New(ctx, rdb, Config{Prefix: redistest.ClusterPrefix(t, cc)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		libs, err := c.FunctionList(ctx, goredis.FunctionListQuery{LibraryNamePattern: s.scripts.lib.name}).Result()
		if err != nil || len(libs) != 1 {
			t.Errorf("master %s: libraries %v (%v), want %s", c.Options().Addr, libs, err, s.scripts.lib.name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
