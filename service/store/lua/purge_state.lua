-- Delete (part of) an ended experiment's state, recording when.
-- KEYS[1] the 'deleted' marker hash, KEYS[2..] state keys to delete
-- ARGV[1] now (epoch seconds), ARGV[2] '1' when this call deletes the last of them
-- Returns the number of keys deleted.
redis.call('HSETNX', KEYS[1], 'at', ARGV[1])
local deleted = 0
for i = 2, #KEYS do deleted = deleted + redis.call('DEL', KEYS[i]) end
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'done', '1') end
return deleted
