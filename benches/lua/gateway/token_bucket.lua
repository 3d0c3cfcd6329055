-- Seed gateway admission bucket, restated (their TryAdmit sends its source with EVAL on
-- every /queue/enter past position 10, so the server hashes the body each call: this
-- body is kept near their length). KEYS[1]: admission:bucket:<event>.
-- ARGV: capacity, refill per second, tokens wanted, now (the gateway's whole seconds).
-- Returns 1 (admitted) or 0; the bucket is written back and kept an hour either way.
local cap = tonumber(ARGV[1])
local per_second = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'last_refill')
local have = tonumber(state[1]) or cap
local since = tonumber(state[2]) or now
local level = have + (now - since) * per_second
if level > cap then
  level = cap
end
if level >= wanted then
  level = level - wanted
  redis.call('HMSET', KEYS[1], 'tokens', level, 'last_refill', now)
  redis.call('EXPIRE', KEYS[1], 3600)
  return 1
end
redis.call('HMSET', KEYS[1], 'tokens', level, 'last_refill', now)
redis.call('EXPIRE', KEYS[1], 3600)
return 0
