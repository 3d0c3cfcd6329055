-- The seed's seat release (shared/seed/000_2168e00bf63f02a1.md,
-- "4. TestLuaExecutor_ReleaseSeatAtomic"; their internal/queue/lua/release_seat_atomic.lua): the
-- seat must be HOLD; HSET AVAILABLE, DEL the hold key, INCR the inventory.
-- KEYS: status hash, inventory counter, hold key. ARGV: seat.
-- Checked against their repository: the same calls, KEYS in the order status, hold, inventory
-- (gateway/release.lua restates it).
local status = redis.call('HGET', KEYS[1], ARGV[1])
if status ~= 'HOLD' then
  return {0, 'NOT_HELD'}
end
redis.call('HSET', KEYS[1], ARGV[1], 'AVAILABLE')
redis.call('DEL', KEYS[3])
local remaining = redis.call('INCR', KEYS[2])
return {1, tostring(remaining)}
