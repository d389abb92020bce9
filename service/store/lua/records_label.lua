-- Attach late labels to stored records of one model; unknown record_ids are not kept.
-- KEYS[1] records hash, KEYS[2] labels hash, KEYS[3] meta hash
-- ARGV: record_id, label json pairs. Returns {matched, unmatched}.
-- meta.labels counts late labels matched; meta.labelled counts records that have a
-- label now and had none before (their own or an earlier late one).
local matched, unmatched, newly = 0, 0, 0
for i = 1, #ARGV, 2 do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 and cjson.decode(raw)['label'] == nil then
      newly = newly + 1
    end
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    matched = matched + 1
  else
    unmatched = unmatched + 1
  end
end
if matched > 0 then
  redis.call('HINCRBY', KEYS[3], 'labels', matched)
end
if newly > 0 then
  redis.call('HINCRBY', KEYS[3], 'labelled', newly)
end
return {matched, unmatched}
