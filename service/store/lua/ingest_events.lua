-- Append one experiment's share of a POST /v1/events batch, dropping event ids seen before,
-- and remember the answer under the batch's call token: a call replayed with the same token
-- (a client retry under its Idempotency-Key, or a redis-py retry after a timeout whose first
-- attempt did run) gets the first answer back and writes nothing.
--
-- Dedup: one hash per experiment. An event id's fingerprint is 10 bytes of a hash keyed with
-- the hash's own random `salt` field (blake2b, computed by the caller), so nobody without
-- Redis access can choose ids that pile into one field. The first 2 bytes pick the hash field,
-- whose value is a packed list of 12-byte entries (the other 8 fingerprint bytes + the
-- arrival time, uint32 seconds, big-endian). Entries are appended in arrival order, so expired
-- ones form a prefix, cut off whenever the field is written. An id is a duplicate when its
-- entry is younger than the window. The salt lives and dies with the entries it keyed: a new
-- (or expired) hash takes the caller's proposal.
--
-- KEYS[1] events stream, KEYS[2] aggregation meta hash, KEYS[3] dedup hash,
-- KEYS[4] this call's remembered answer
-- ARGV[1] number of events n
-- ARGV[2] fingerprints, 10 bytes per event, keyed with ARGV[6]
-- ARGV[3] dedup window (seconds)
-- ARGV[4] max backlog: refuse when this many events already wait for aggregation
-- ARGV[5] the entry's data: a JSON array of the n events, in order
-- ARGV[6] the salt the fingerprints were keyed with (hex)
-- ARGV[7] digest of the request (an answer remembered for another digest is stale)
-- ARGV[8] how long to remember the answer (seconds)
-- Returns {accepted, duplicates}; {-1, backlog} when the backlog is full, {-2, salt} when the
-- hash is keyed with another salt (then nothing was written).
local prior = redis.call('GET', KEYS[4])
if prior then
  local digest, a, d = string.match(prior, '^([^:]*):(%d+):(%d+)$')
  if digest == ARGV[7] then
    return {tonumber(a), tonumber(d)}
  end
end

local salt = redis.call('HGET', KEYS[3], 'salt')
if salt and salt ~= ARGV[6] then
  return {-2, salt}
end

local n = tonumber(ARGV[1])
local backlog = tonumber(redis.call('HGET', KEYS[2], 'backlog') or '0')
if backlog >= tonumber(ARGV[4]) then
  return {-1, backlog}
end
if not salt then
  redis.call('HSET', KEYS[3], 'salt', ARGV[6])
end

local now = tonumber(redis.call('TIME')[1])
local window = tonumber(ARGV[3])
local oldest = now - window
local stamp = struct.pack('>I4', now)

local function seen(packed, fp)
  local from = 1
  while true do
    local at = string.find(packed, fp, from, true)
    if not at then return false end
    if (at - 1) % 12 == 0 and struct.unpack('>I4', packed, at + 8) > oldest then
      return true
    end
    from = at + 1
  end
end

local function fresh(packed)
  local cut = 0
  while cut + 12 <= #packed and struct.unpack('>I4', packed, cut + 9) <= oldest do
    cut = cut + 12
  end
  if cut == 0 then return packed end
  return string.sub(packed, cut + 1)
end

local fps = ARGV[2]
local fields, prints = {}, {}
for i = 1, n do
  local o = (i - 1) * 10
  fields[i] = string.sub(fps, o + 1, o + 2)
  prints[i] = string.sub(fps, o + 3, o + 10)
end
-- One HMGET and one HSET per 1,000 ids instead of a call per id; `current` keeps what this
-- batch already wrote, so a duplicate inside the batch is caught too.
local current, dirty = {}, {}
for from = 1, n, 1000 do
  local to = math.min(from + 999, n)
  local got = redis.call('HMGET', KEYS[3], unpack(fields, from, to))
  for i = from, to do
    if current[fields[i]] == nil then current[fields[i]] = got[i - from + 1] end
  end
end
local mask = {}
local duplicates = 0
for i = 1, n do
  local field = fields[i]
  local packed = current[field]
  if packed and seen(packed, prints[i]) then
    mask[i] = '0'
    duplicates = duplicates + 1
  else
    if packed then packed = fresh(packed) else packed = '' end
    current[field] = packed .. prints[i] .. stamp
    if not dirty[field] then
      dirty[field] = true
      dirty[#dirty + 1] = field
    end
    mask[i] = '1'
  end
end
for from = 1, #dirty, 500 do
  local args = {}
  for j = from, math.min(from + 499, #dirty) do
    args[#args + 1] = dirty[j]
    args[#args + 1] = current[dirty[j]]
  end
  redis.call('HSET', KEYS[3], unpack(args))
end
redis.call('EXPIRE', KEYS[3], window)

local accepted = n - duplicates
if accepted > 0 then
  if duplicates > 0 then
    redis.call('XADD', KEYS[1], '*', 'n', accepted, 'd', ARGV[5], 'm', table.concat(mask))
  else
    redis.call('XADD', KEYS[1], '*', 'n', accepted, 'd', ARGV[5])
  end
  redis.call('HINCRBY', KEYS[2], 'backlog', accepted)
  redis.call('HINCRBY', KEYS[2], 'ingested', accepted)
end
if duplicates > 0 then
  redis.call('HINCRBY', KEYS[2], 'duplicates', duplicates)
end
redis.call('SET', KEYS[4], ARGV[7] .. ':' .. accepted .. ':' .. duplicates, 'EX', ARGV[8])
return {accepted, duplicates}
