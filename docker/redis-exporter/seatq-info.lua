-- seatq: turns `INFO seatq` into redis_exporter metrics (run by redis_exporter --script).
--
-- redis_exporter's --include-modules-metrics only keeps a built-in allow-list of module fields
-- (RediSearch, ...), so the seatq_* fields are read here instead. The exporter wants a flat
-- array of alternating keys and values, both strings, and publishes each pair as
--   redis_script_values{key="<key>", filename="<this file>"} <value>
-- Keys:
--   seatq_events:3                          -> seatq_events
--   seatq_cmd_queue_enqueue:calls=10,...    -> seatq_cmd_queue_enqueue_calls, ..._p95_usec, ...
--   seatq_errors_DUPLICATE:count=99         -> seatq_errors_DUPLICATE_count
-- Only plain decimal numbers are returned: one unparsable value would make the exporter fail
-- the whole scrape (redis_up 0). An empty or missing section returns nothing
-- (redis_script_result 2), never an error.

local info = redis.pcall('INFO', 'seatq')
if type(info) ~= 'string' then
  return {}
end

local out = {}

local function add(key, value)
  if value:match('^%-?%d+%.?%d*$') then
    out[#out + 1] = key
    out[#out + 1] = value
  end
end

for line in info:gmatch('[^\r\n]+') do
  if line:sub(1, 1) ~= '#' then
    local field, value = line:match('^([^:]+):(.*)$')
    if field then
      if value:find('=', 1, true) then
        for name, v in value:gmatch('([^,=]+)=([^,]*)') do
          add(field .. '_' .. name, v)
        end
      else
        add(field, value)
      end
    end
  end
end

return out
