-- The seed's admission (shared/seed/000_2168e00bf63f02a1.md, "2. 통합 테스트 시나리오":
-- /api/v1/queue/enter -> "Token Bucket 소비"). The report names it without a script, so this is
-- a plausible equivalent doing what QUEUE.ADMIT does: an admitted user gets its pass back
-- (GET); only the front of the waiting zset (ZRANK 0) is admitted; a token bucket (HMGET
-- tokens/ts, refill at rate per second up to burst, HSET) must have a token; the user leaves
-- the waiting zset (ZREM) and gets a pass key with a TTL (SET EX). The clock is the caller's
-- (ARGV), as in their gateway. Replies {1, pass} or {0, 'NOT_FOUND' | 'NOT_READY' |
-- 'RATE_LIMITED'}. KEYS: waiting zset, bucket hash, pass key.
-- Their repository admits in Go (internal/routes/queue.go Enter): the queue data GET, ZRANK
-- (positions past 100 refused, 1-10 bypass the bucket), a bucket script sent with EVAL, then
-- SET reservation, SET queue data, DEL heartbeat, ZREM, ZADD + ZREMRANGEBYSCORE of admission
-- metrics; benches/versus_seed/gateway.rs runs that as the seed's enter flow. This script is
-- the minimal single-script form of the same decision.
-- ARGV: user id, now ms, rate per second, burst, pass ttl s, pass.
local pass = redis.call('GET', KEYS[3])
if pass then
  return {1, pass}
end
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then
  return {0, 'NOT_FOUND'}
end
if rank > 0 then
  return {0, 'NOT_READY'}
end
local now, rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local bucket = redis.call('HMGET', KEYS[2], 'tokens', 'ts')
local tokens = tonumber(bucket[1]) or burst
local ts = tonumber(bucket[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
if tokens < 1 then
  return {0, 'RATE_LIMITED'}
end
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens - 1), 'ts', ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SET', KEYS[3], ARGV[6], 'EX', ARGV[5])
return {1, ARGV[6]}
