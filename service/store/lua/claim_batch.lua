-- Claim a POST /v1/events Idempotency-Key, or read who holds it (SET NX GET, for any Redis).
-- KEYS[1] the key's record; ARGV[1] the claim (JSON with the body's digest); ARGV[2] ttl (s).
-- Returns the record already there (nothing written), or nil when the claim was stored.
local prior = redis.call('GET', KEYS[1])
if prior then
  return prior
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
