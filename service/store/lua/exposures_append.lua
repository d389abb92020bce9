-- Append exposures of one experiment to its stream, one entry each, in one round trip.
-- KEYS[1] exposures stream
-- ARGV[1] experiment key
-- ARGV[2] JSON array of rows [unit_id, variant, version, timestamp, attributes], all strings
-- Returns the number of entries added.
local rows = cjson.decode(ARGV[2])
for i = 1, #rows do
  local r = rows[i]
  redis.call('XADD', KEYS[1], '*',
    'experiment', ARGV[1], 'unit_id', r[1], 'variant', r[2], 'version', r[3],
    'timestamp', r[4], 'attributes', r[5])
end
return #rows
