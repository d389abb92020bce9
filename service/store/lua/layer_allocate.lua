-- Reserve a contiguous bucket range of width ARGV[2] for experiment ARGV[1] in a layer.
-- KEYS[1] layer hash (experiment -> "start:end"). Returns {start, end} or {-1, free}.
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then
  local s, e = string.match(existing, '(%d+):(%d+)')
  return {tonumber(s), tonumber(e)}
end
local width = tonumber(ARGV[2])
local total = tonumber(ARGV[3])
local ranges = {}
local flat = redis.call('HGETALL', KEYS[1])
for i = 2, #flat, 2 do
  local s, e = string.match(flat[i], '(%d+):(%d+)')
  table.insert(ranges, {tonumber(s), tonumber(e)})
end
table.sort(ranges, function(a, b) return a[1] < b[1] end)
local cursor, free = 0, 0
for _, r in ipairs(ranges) do
  if r[1] - cursor >= width then
    redis.call('HSET', KEYS[1], ARGV[1], cursor .. ':' .. (cursor + width))
    return {cursor, cursor + width}
  end
  free = free + math.max(0, r[1] - cursor)
  cursor = math.max(cursor, r[2])
end
if total - cursor >= width then
  redis.call('HSET', KEYS[1], ARGV[1], cursor .. ':' .. (cursor + width))
  return {cursor, cursor + width}
end
return {-1, free + math.max(0, total - cursor)}
