-- The seed's seat release as their repository has it (internal/queue/lua/
-- release_seat_atomic.lua, restated): the seat must be HOLD (else NOT_HELD; the holder is not
-- checked); HSET AVAILABLE, DEL the hold key, INCR the inventory. Replies {1, remaining}.
-- KEYS: seat status hash, hold key, inventory counter (their order). ARGV: seat.
local status = redis.call('HGET', KEYS[1], ARGV[1])
if status ~= 'HOLD' then
  return {0, 'NOT_HELD'}
end
redis.call('HSET', KEYS[1], ARGV[1], 'AVAILABLE')
redis.call('DEL', KEYS[2])
local left = redis.call('INCR', KEYS[3])
return {1, tostring(left)}
