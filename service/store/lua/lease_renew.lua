-- Extend a lease the caller still holds.
-- KEYS[1] lease; ARGV[1] holder token, ARGV[2] ttl in ms. Returns 1 when renewed.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
