package testutil

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func client(t *testing.T, r *Redis, pw string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: pw, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStartStopRestart(t *testing.T) {
	r := StartRedis(t)
	ctx := t.Context()
	c := client(t, r, "")
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	r.Stop()
	if err := ping(r.Addr(), ""); err == nil {
		t.Fatal("PING answered after Stop")
	}
	r.Stop() // no-op
	r.Restart()
	// Without persistence the data is gone, the address is the same.
	if err := c.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("GET after restart without persistence: %v, want redis.Nil", err)
	}
}

func TestKillWithAppendOnlyKeepsWrites(t *testing.T) {
	r := StartRedis(t, WithAppendOnly("always"))
	ctx := t.Context()
	c := client(t, r, "")
	for i := range 50 {
		if err := c.RPush(ctx, "l", i).Err(); err != nil {
			t.Fatalf("RPUSH: %v", err)
		}
	}
	r.Kill()
	r.Restart()
	n, err := c.LLen(ctx, "l").Result()
	if err != nil || n != 50 {
		t.Fatalf("LLEN after SIGKILL and restart = %d, %v; want 50", n, err)
	}
}

func TestPassword(t *testing.T) {
	r := StartRedis(t, WithPassword("s3cret"))
	ctx := context.Background()
	if err := client(t, r, "").Ping(ctx).Err(); err == nil {
		t.Fatal("PING without password succeeded")
	}
	if err := client(t, r, "s3cret").Ping(ctx).Err(); err != nil {
		t.Fatalf("PING with password: %v", err)
	}
	r.Restart()
	if err := client(t, r, "s3cret").Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after restart: %v", err)
	}
}

func TestTwoServersDiffer(t *testing.T) {
	a, b := StartRedis(t), StartRedis(t)
	if a.Addr() == b.Addr() || a.Dir() == b.Dir() {
		t.Fatalf("servers share %s / %s", a.Addr(), a.Dir())
	}
}

// fatalRecorder stands in for a testing.TB to see StartRedis fail.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartRedisFailsWithoutServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	f := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartRedis(f)
	}()
	<-done
	if !strings.Contains(f.msg, "redis-server not found") {
		t.Fatalf("StartRedis without redis-server: %q", f.msg)
	}
}
