-- Move one stream entry the aggregator cannot apply to the dead-letter stream, and XACK it.
-- KEYS[1] stream, KEYS[2] dead-letter stream, KEYS[3] aggregation meta hash
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id, ARGV[4] reason,
-- ARGV[5] events to take off the backlog, ARGV[6..] the entry's fields and values (prefixed)
-- Returns 1, or 0 when the entry is no longer pending for this consumer.
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #pending == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*',
  'source', KEYS[1], 'id', ARGV[3], 'reason', ARGV[4], unpack(ARGV, 6))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[3], 'dead', 1)
local backlog = tonumber(ARGV[5])
if backlog > 0 then redis.call('HINCRBY', KEYS[3], 'backlog', -backlog) end
return 1
