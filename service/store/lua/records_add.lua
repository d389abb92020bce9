-- Add prediction records of one model, dedup by record_id, trim to the newest N.
-- KEYS[1] records hash, KEYS[2] order list, KEYS[3] labels hash, KEYS[4] meta hash,
-- KEYS[5] reference rows string (only tested for existence), KEYS[6] the model monitor's
-- feed stream (the accepted record_ids go there as one entry; meta.mw_backlog counts them
-- until the monitor has applied them)
-- ARGV[1] max records kept, ARGV[2] now (epoch seconds), then record_id, json,
-- has_label ("1" or "0") triples. Returns {accepted, duplicates, stored, has_reference}.
local max_records = tonumber(ARGV[1])
local accepted, duplicates, labelled = 0, 0, 0
local fresh = {}
for i = 3, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i])
    accepted = accepted + 1
    fresh[accepted] = ARGV[i]
    if ARGV[i + 2] == '1' then
      labelled = labelled + 1
    end
  else
    duplicates = duplicates + 1
  end
end
local size = redis.call('LLEN', KEYS[2])
local excess = size - max_records
while excess > 0 do
  local ids = redis.call('LPOP', KEYS[2], math.min(excess, 1000))
  redis.call('HDEL', KEYS[1], unpack(ids))
  redis.call('HDEL', KEYS[3], unpack(ids))
  excess = excess - #ids
end
if accepted > 0 then
  redis.call('XADD', KEYS[6], '*', 'k', 'r', 'ids', cjson.encode(fresh))
  redis.call('HINCRBY', KEYS[4], 'mw_backlog', accepted)
  redis.call('HSETNX', KEYS[4], 'created_at', ARGV[2])
  redis.call('HSET', KEYS[4], 'last_record_at', ARGV[2])
  redis.call('HINCRBY', KEYS[4], 'accepted', accepted)
end
if labelled > 0 then
  redis.call('HINCRBY', KEYS[4], 'labelled', labelled)
end
if duplicates > 0 then
  redis.call('HINCRBY', KEYS[4], 'duplicates', duplicates)
end
return {accepted, duplicates, math.min(size, max_records), redis.call('EXISTS', KEYS[5])}
