-- Store a model's reference: what it is (JSON) and its rows (base64), both or neither.
-- KEYS[1] reference meta string, KEYS[2] reference rows string
-- ARGV[1] meta JSON, ARGV[2] rows, ARGV[3] "replace" (an upload) or "nx" (the frozen
-- first records: only when the model has no reference rows yet; a reference kept by an
-- older version, ranges without rows, is replaced). Returns 1 if written.
if ARGV[3] == 'nx' and redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return 1
