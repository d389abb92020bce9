-- Attach late labels to stored records of one model; unknown record_ids are not kept.
-- KEYS[1] records hash, KEYS[2] labels hash, KEYS[3] meta hash, KEYS[4] the model
-- monitor's feed stream: each matched label goes there as {record_id, the late label it
-- replaces (JSON) or false (the record's own label, if any, was in force), the new label
-- (JSON)}, one entry per call; meta.mw_backlog counts them until the monitor applied them.
-- ARGV: record_id, label json pairs. Returns {matched, unmatched}.
-- meta.labels counts late labels matched; meta.labelled counts records that have a
-- label now and had none before (their own or an earlier late one).
local matched, unmatched, newly = 0, 0, 0
local changes = {}
for i = 1, #ARGV, 2 do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    local before = redis.call('HGET', KEYS[2], ARGV[i])
    if not before and cjson.decode(raw)['label'] == nil then
      newly = newly + 1
    end
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    matched = matched + 1
    changes[matched] = {ARGV[i], before or false, ARGV[i + 1]}
  else
    unmatched = unmatched + 1
  end
end
if matched > 0 then
  redis.call('XADD', KEYS[4], '*', 'k', 'l', 'items', cjson.encode(changes))
  redis.call('HINCRBY', KEYS[3], 'mw_backlog', matched)
  redis.call('HINCRBY', KEYS[3], 'labels', matched)
end
if newly > 0 then
  redis.call('HINCRBY', KEYS[3], 'labelled', newly)
end
return {matched, unmatched}
