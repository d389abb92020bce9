-- Write an experiment's journal entry once; later writes for the same key are ignored.
-- KEYS[1] entries hash, KEYS[2] order list; ARGV[1] experiment key, ARGV[2] entry JSON.
-- Returns 1 when written, 0 when the experiment already had an entry.
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
