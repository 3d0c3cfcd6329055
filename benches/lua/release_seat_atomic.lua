-- The seed's seat release: the seat must be HOLD; HSET AVAILABLE, DEL the hold key, INCR the
-- inventory. KEYS: status hash, inventory counter, hold key. ARGV: seat.
local status = redis.call('HGET', KEYS[1], ARGV[1])
if status ~= 'HOLD' then
  return {0, 'NOT_HELD'}
end
redis.call('HSET', KEYS[1], ARGV[1], 'AVAILABLE')
redis.call('DEL', KEYS[3])
local remaining = redis.call('INCR', KEYS[2])
return {1, tostring(remaining)}
