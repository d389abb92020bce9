-- Compare-and-set an experiment document, appending its audit entry (and spec version).
-- KEYS[1] doc, KEYS[2] audit list, KEYS[3] spec versions hash
-- ARGV[1] expected current doc ("" = must not exist), ARGV[2] new doc,
-- ARGV[3] audit entry, ARGV[4] version ("" = no new spec version), ARGV[5] spec json
local current = redis.call('GET', KEYS[1])
if current == false then current = '' end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[4], ARGV[5]) end
return 1
