-- Attach late labels to stored records of one model; unknown record_ids are not kept.
-- KEYS[1] records hash, KEYS[2] labels hash, KEYS[3] meta hash
-- ARGV: record_id, label json pairs. Returns {matched, unmatched}.
local matched, unmatched = 0, 0
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    matched = matched + 1
  else
    unmatched = unmatched + 1
  end
end
if matched > 0 then
  redis.call('HINCRBY', KEYS[3], 'labels', matched)
end
return {matched, unmatched}
