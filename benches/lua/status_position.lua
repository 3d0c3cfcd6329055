-- The seed's status (shared/seed/000_2168e00bf63f02a1.md, "2. 통합 테스트 시나리오":
-- /api/v1/queue/status -> Global Position; "10. TestStreamQueue_GlobalPosition"): the user's
-- global position, here as ZRANK in the waiting zset that enqueue_atomic_streams.lua keeps
-- (the cheapest exact form of it: one command). Replies {1, position} (1-based) or
-- {0, 'NOT_FOUND'}. KEYS: waiting zset. ARGV: user id.
-- Their repository has no status script: its handler makes 8 calls (heartbeat EXISTS and
-- EXPIRE, the queue data GET, ZRANK in a position index, three ZCOUNTs for the ETA, ZRANK for
-- eligibility), which benches/versus_seed/gateway.rs runs as the seed's status flow.
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then
  return {0, 'NOT_FOUND'}
end
return {1, rank + 1}
