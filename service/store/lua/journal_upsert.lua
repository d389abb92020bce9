-- Append a journal entry, or replace the entry with the same id (a repeat of the same
-- inputs). KEYS[1] journal list, KEYS[2] id -> index hash; ARGV[1] id, ARGV[2] entry JSON.
-- Returns {index, 1 if added else 0}.
local at = redis.call('HGET', KEYS[2], ARGV[1])
if at then
  redis.call('LSET', KEYS[1], tonumber(at), ARGV[2])
  return {tonumber(at), 0}
end
local length = redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], length - 1)
return {length - 1, 1}
