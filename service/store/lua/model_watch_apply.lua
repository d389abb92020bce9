-- Apply one batch of the model monitor's feed to its time buckets, exactly once.
-- The caller (the holder of the model's monitor lease) read the feed after ARGV cursor
-- `expect` and computed the deltas; if the cursor moved meanwhile (another worker applied
-- the same entries) nothing is written and 0 is returned.
--
-- KEYS[1] state hash, KEYS[2] feed stream, KEYS[3] model meta hash, KEYS[3 + i] bucket i
-- ARGV[1] msgpack {expect = cursor read ('' = none yet), cursor = the last entry applied,
--   ids = feed entry ids to delete, backlog = items applied (meta.mw_backlog -= it),
--   state = {field = value} to set, buckets = {{at = expire-at (unix s), add = {field =
--   delta}, set = {field = value} (set only when absent)}, ...}}
-- Returns 1 when applied, 0 when the cursor had moved.
local batch = cmsgpack.unpack(ARGV[1])
local cursor = redis.call('HGET', KEYS[1], 'cursor') or ''
if cursor ~= batch.expect then
  return 0
end
-- Refuse before writing anything: a script that fails half-way keeps its writes.
for _, bucket in ipairs(batch.buckets) do
  for field, delta in pairs(bucket.add) do
    if delta ~= delta or delta == math.huge or delta == -math.huge then
      return redis.error_reply('non-finite delta for ' .. field)
    end
  end
end
for i, bucket in ipairs(batch.buckets) do
  local key = KEYS[3 + i]
  for field, value in pairs(bucket.set) do
    redis.call('HSETNX', key, field, value)
  end
  for field, delta in pairs(bucket.add) do
    if delta ~= 0 then
      -- 17 significant digits: Lua's own number formatting keeps 14.
      redis.call('HINCRBYFLOAT', key, field, string.format('%.17g', delta))
    end
  end
  redis.call('EXPIREAT', key, bucket.at)
end
for field, value in pairs(batch.state) do
  redis.call('HSET', KEYS[1], field, value)
end
redis.call('HSET', KEYS[1], 'cursor', batch.cursor)
for from = 1, #batch.ids, 1000 do
  redis.call('XDEL', KEYS[2], unpack(batch.ids, from, math.min(from + 999, #batch.ids)))
end
if batch.backlog > 0 then
  redis.call('HINCRBY', KEYS[3], 'mw_backlog', -batch.backlog)
end
return 1
