package cache

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// setIfNewer stores "version:body" unless the stored version is at least as
// new. A tombstone is a stored version with an empty body.
var setIfNewer = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local v = tonumber(string.match(cur, '^(%d+):'))
  if v and v >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1
`)

// Redis is the shared cache layer.
type Redis struct {
	client *redis.Client
	prefix string
}

// NewRedis wraps client; keys are prefix + user id.
func NewRedis(client *redis.Client, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// RedisOptions parses url and sets short timeouts and no retries: the layer
// is an optimisation, and a slow Redis must not slow requests down.
func RedisOptions(url string) (*redis.Options, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, errors.New("redis URL is not valid") // never echo the URL: it may hold a password
	}
	opts.DialTimeout = 250 * time.Millisecond
	opts.ReadTimeout = 250 * time.Millisecond
	opts.WriteTimeout = 250 * time.Millisecond
	opts.MaxRetries = -1 // no retries
	return opts, nil
}

func (r *Redis) key(id int64) string { return r.prefix + strconv.FormatInt(id, 10) }

// Get implements Remote.
func (r *Redis) Get(ctx context.Context, id int64) (Entry, bool, error) {
	raw, err := r.client.Get(ctx, r.key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	sep := bytes.IndexByte(raw, ':')
	if sep < 0 {
		return Entry{}, false, nil // not ours: treat as a miss
	}
	version, err := strconv.ParseInt(string(raw[:sep]), 10, 64)
	if err != nil || sep == len(raw)-1 {
		return Entry{}, false, nil //nolint:nilerr // a tombstone or garbage is a miss, not a failure
	}
	return Entry{Version: version, Body: raw[sep+1:]}, true, nil
}

// Set implements Remote.
func (r *Redis) Set(ctx context.Context, id int64, e Entry, ttl time.Duration) error {
	return setIfNewer.Run(ctx, r.client, []string{r.key(id)}, e.Version, e.Body, ttl.Milliseconds()).Err()
}

// Tombstone implements Remote.
func (r *Redis) Tombstone(ctx context.Context, id int64, version int64, ttl time.Duration) error {
	return setIfNewer.Run(ctx, r.client, []string{r.key(id)}, version, "", ttl.Milliseconds()).Err()
}
