-- Compare-and-delete: release a lease (or a claim) only if the caller still holds it.
-- KEYS[1] lease; ARGV[1] holder token (the value the caller stored). Returns 1 when released.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
