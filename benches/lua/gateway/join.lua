-- The seed gateway's join script, restated for the benchmark (what their
-- internal/queue/lua/enqueue_atomic_streams.lua does, in our words): refuse a request whose
-- dedupe key is already set; otherwise read the server clock (TIME), append the join to the
-- user's own stream with five fields (token, event, user, seconds, microseconds) and remember
-- the dedupe key for ARGV[4] seconds. Their handler runs it through go-redis Script.Run, i.e.
-- EVALSHA. Replies {1, stream id} or {0, 'DUPLICATE'}.
-- KEYS: dedupe key, user stream. ARGV: waiting token, event id, user id, dedupe ttl seconds.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, 'DUPLICATE'}
end
local clock = redis.call('TIME')
local id = redis.call('XADD', KEYS[2], '*', 'token', ARGV[1], 'event_id', ARGV[2],
  'user_id', ARGV[3], 'timestamp', clock[1], 'timestamp_usec', clock[2])
redis.call('SETEX', KEYS[1], ARGV[4], '1')
return {1, id}
