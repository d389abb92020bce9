-- Read all sufficient statistics of one experiment in one atomic step.
-- KEYS[1] totals hash, KEYS[2] set of hours, KEYS[3] aggregation meta hash,
-- KEYS[3 + i] the hash of the i-th hour the caller expects
-- Returns {hours set members, totals (flat), metrics json or '', hour i (flat)...}
local out = {
  redis.call('SMEMBERS', KEYS[2]),
  redis.call('HGETALL', KEYS[1]),
  redis.call('HGET', KEYS[3], 'metrics') or '',
}
for i = 4, #KEYS do
  out[#out + 1] = redis.call('HGETALL', KEYS[i])
end
return out
