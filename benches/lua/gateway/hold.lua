-- The seed's seat hold as their repository has it (internal/queue/lua/hold_seat_atomic.lua,
-- restated): a seat with no status counts as available; any other status than AVAILABLE is
-- SEAT_UNAVAILABLE; DECR the inventory, undone with INCR below zero (SOLD_OUT); HSET HOLD;
-- SETEX the hold key to the user. Replies {1, remaining} or {0, code}.
-- KEYS: seat status hash, hold key, inventory counter (their order). ARGV: seat, user, ttl s.
local status = redis.call('HGET', KEYS[1], ARGV[1])
if status ~= false and status ~= 'AVAILABLE' then
  return {0, 'SEAT_UNAVAILABLE'}
end
local left = redis.call('DECR', KEYS[3])
if left < 0 then
  redis.call('INCR', KEYS[3])
  return {0, 'SOLD_OUT'}
end
redis.call('HSET', KEYS[1], ARGV[1], 'HOLD')
redis.call('SETEX', KEYS[2], ARGV[3], ARGV[2])
return {1, tostring(left)}
