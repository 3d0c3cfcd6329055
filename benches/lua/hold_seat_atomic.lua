-- The seed's seat hold (shared/seed/000_2168e00bf63f02a1.md, "3. TestLuaExecutor_HoldSeatAtomic"
-- and "5. TestLuaExecutor_SoldOut"; their internal/queue/lua/hold_seat_atomic.lua): HGET status,
-- DECR inventory (rolled back on SOLD_OUT), HSET HOLD, SETEX the hold key.
-- KEYS: status hash, inventory counter, hold key. ARGV: seat, user, ttl seconds.
-- Checked against their repository: theirs takes KEYS in the order status, hold, inventory and
-- treats a seat with no status as available (gateway/hold.lua restates it); the calls made
-- are the same.
local status = redis.call('HGET', KEYS[1], ARGV[1])
if status ~= 'AVAILABLE' then
  return {0, 'SEAT_UNAVAILABLE'}
end
local remaining = redis.call('DECR', KEYS[2])
if remaining < 0 then
  redis.call('INCR', KEYS[2])
  return {0, 'SOLD_OUT'}
end
redis.call('HSET', KEYS[1], ARGV[1], 'HOLD')
redis.call('SETEX', KEYS[3], ARGV[3], ARGV[2])
return {1, tostring(remaining)}
