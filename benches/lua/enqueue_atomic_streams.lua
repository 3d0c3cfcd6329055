-- The seed's enqueue (shared/seed/000_2168e00bf63f02a1.md, "1. TestLuaExecutor_EnqueueAtomic",
-- "2. ..._Concurrent", the EnqueueAtomic(dedupeKey, streamKey, token, eventID, userID, 300) call
-- in "1. Gateway API 통합", and "10. TestStreamQueue_GlobalPosition"): EXISTS the dedupe key
-- (DUPLICATE), XADD the join into the user's own stream stream:event:{<event>}:user:<user>,
-- SETEX the dedupe key for 300 s. To keep a global order (the seed's /queue/status needs a
-- global position, "알려진 제한사항 2"), the user is also added to a waiting ZSET scored by the
-- entry's stream-ID time, as their global position sorted by the parsed stream-ID timestamp.
-- Ties within one millisecond fall back to member order (the seed's admitted inaccuracy).
-- Replies {1, stream-id} or {0, 'DUPLICATE'} (the seed's array convention, "주요 수정 사항 1").
-- Checked against their repository (traffic-tacos/gateway-api, internal/queue/lua/
-- enqueue_atomic_streams.lua): theirs also reads TIME and writes 5 fields (seconds and
-- microseconds), has no ZADD (their handler adds the token to two ZSETs in a pipeline after
-- the script) and keys the dedupe on the request's Idempotency-Key; gateway/join.lua restates
-- it, and benches/versus_seed/gateway.rs runs it with the handler's other calls.
-- KEYS: dedupe key, user stream, waiting zset. ARGV: token, event id, user id, ttl s, client ms.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, 'DUPLICATE'}
end
local id = redis.call('XADD', KEYS[2], '*', 'token', ARGV[1], 'event_id', ARGV[2],
  'user_id', ARGV[3], 'timestamp', ARGV[5])
redis.call('SETEX', KEYS[1], ARGV[4], '1')
redis.call('ZADD', KEYS[3], tonumber(string.match(id, '^%d+')), ARGV[3])
return {1, id}
