-- Apply one pre-aggregated batch of stream entries to the sufficient statistics, then XACK them.
-- Atomic: a crash before it runs leaves the entries pending (they are claimed and applied
-- again); once it has run they are acknowledged. An entry no longer pending for this consumer
-- (another worker claimed or applied it) makes the whole call a no-op that names it.
--
-- KEYS[1] stream, KEYS[2] units hash, KEYS[3] totals hash, KEYS[4] set of hours,
-- KEYS[5] segment state hash, KEYS[6] aggregation meta hash, then per segment s (1..S):
-- KEYS[5 + 2s] its ranked values (zset), KEYS[6 + 2s] its candidates (zset); then
-- KEYS[6 + 2S + i] the hash of hours[i]
-- ARGV[1] consumer group, ARGV[2] consumer, ARGV[3] msgpack batch (built by the worker's
-- service/worker/_preaggregate.py; M metrics, S segments, flat arrays throughout):
--   ids      stream entry ids of the batch
--   counters meta counter -> increment (the backlog is decremented through counters.backlog)
--   names    metric names; kinds: 'm' mean, 'p' proportion, 'r' ratio
--   variants the experiment's variant keys
--   segs     segment names; decl: per segment, its declared values (always a row each);
--            limit: undeclared values with a row per segment, chosen by volume;
--            cands: values counted per segment to find them (Space-Saving)
--   hours    hours since the epoch, by the 1-based hour index used below
--   units    unit-level: {unit_id, variant ('' = not in the experiment), events excluded if
--            the unit is new, S raw segment values (false = missing), G, then G groups sorted
--            by hour, each {hour index, y_1..y_M, d_1..d_M, x_1..x_M}}: y the metric's sum
--            (proportion: 1 if any value > 0), d the ratio denominator sum, x the covariate
--            (false = none)
--   cells    request-level: {hour index, variant, S raw segment values, n, then
--            s q ds dq x cs cq cx for each metric}
-- A unit's state (field unit_id of KEYS[2]) is msgpack {variant, S segment tags,
-- y_1..y_M, d_1..d_M, x_1..x_M}. A segment tag is false (attribute missing), '' (in no
-- value's row: counted in the segment's 'any' cell only), 'd|value' (a declared value) or
-- 'E|value' (a ranked value, promoted at epoch E: the unit counts in its row while that
-- promotion lasts).
--
-- Segment cells: every unit with the attribute counts in the segment's 'any' cell (hash
-- field suffix '|segment'); a unit whose value has a row counts in it too (suffix
-- '|segment|tag'). The reader forms '__other__' as 'any' minus the rows it shows.
-- Undeclared values get rows by volume (units entering with the value): they are counted
-- with the Space-Saving algorithm over 'cands' counters; a value whose guaranteed count
-- (count - error) reaches 1 gets a row while fewer than 'limit' have one, or takes the
-- row of the smallest one when it has over twice its units (that value's all-time cells
-- are deleted: its units count in '__other__' from then on).
-- Returns {1, units entered, variant mismatches} or {0, stale id, ...}.
local group, consumer = ARGV[1], ARGV[2]
local batch = cmsgpack.unpack(ARGV[3])

local stale = {}
for _, id in ipairs(batch.ids) do
  local pending = redis.call('XPENDING', KEYS[1], group, id, id, 1, consumer)
  if #pending == 0 then stale[#stale + 1] = id end
end
if #stale > 0 then
  return {0, unpack(stale)}
end

local names, kinds, segs = batch.names, batch.kinds, batch.segs
local M, S = #names, #segs
local K = 1 + 8 * M
local limit, cap = tonumber(batch.limit), tonumber(batch.cands)
local CODES = {'s', 'q', 'ds', 'dq', 'x', 'cs', 'cq', 'cx'}
local is_ratio, is_prop = {}, {}
for m = 1, M do
  is_ratio[m] = kinds[m] == 'r'
  is_prop[m] = kinds[m] == 'p'
end

local S_STATE = KEYS[5]
local HOUR0 = 6 + 2 * S -- KEYS[HOUR0 + hi] is the hash of hour index hi
local declared, epochs = {}, {}
for s = 1, S do
  local set = {}
  for _, v in ipairs(batch.decl[s] or {}) do set[v] = true end
  declared[s], epochs[s] = set, {}
end

-- The epoch (a string) at which value v of segment s got its row, or false.
local function epoch_of(s, v)
  local known = epochs[s][v]
  if known == nil then
    known = redis.call('HGET', S_STATE, 'p|' .. segs[s] .. '|' .. v) or false
    epochs[s][v] = known
  end
  return known
end

local function promote(s, v, units)
  local name = segs[s]
  redis.call('ZREM', KEYS[6 + 2 * s], v)
  redis.call('HDEL', S_STATE, 'e|' .. name .. '|' .. v)
  redis.call('ZADD', KEYS[5 + 2 * s], units, v)
  local epoch = tostring(redis.call('HINCRBY', S_STATE, 'epoch|' .. name, 1))
  redis.call('HSET', S_STATE, 'p|' .. name .. '|' .. v, epoch)
  epochs[s][v] = epoch
end

local function demote(s, v)
  local name = segs[s]
  local suffix = '|' .. name .. '|' .. epoch_of(s, v) .. '|' .. v
  redis.call('ZREM', KEYS[5 + 2 * s], v)
  redis.call('HDEL', S_STATE, 'p|' .. name .. '|' .. v)
  epochs[s][v] = false
  local fields = {}
  for _, variant in ipairs(batch.variants) do
    fields[#fields + 1] = variant .. '||n' .. suffix
    for m = 1, M do
      for k = 1, 8 do fields[#fields + 1] = variant .. '|' .. names[m] .. '|' .. CODES[k] .. suffix end
    end
  end
  for from = 1, #fields, 1000 do
    redis.call('HDEL', KEYS[3], unpack(fields, from, math.min(from + 999, #fields)))
  end
end

-- Count k more units entering with undeclared value v of segment s; give it a row if due.
local function rank(s, v, k)
  local top, cand = KEYS[5 + 2 * s], KEYS[6 + 2 * s]
  if redis.call('ZSCORE', top, v) then
    redis.call('ZINCRBY', top, k, v)
    return
  end
  local efield = 'e|' .. segs[s] .. '|' .. v
  local count, err
  if redis.call('ZSCORE', cand, v) then
    count = tonumber(redis.call('ZINCRBY', cand, k, v))
    err = tonumber(redis.call('HGET', S_STATE, efield) or '0')
  elseif redis.call('ZCARD', cand) < cap then
    redis.call('ZADD', cand, k, v)
    count, err = k, 0
  else -- Space-Saving: take over the smallest counter, its count as the error
    local low = redis.call('ZRANGE', cand, 0, 0, 'WITHSCORES')
    local m = tonumber(low[2])
    redis.call('ZREM', cand, low[1])
    redis.call('HDEL', S_STATE, 'e|' .. segs[s] .. '|' .. low[1])
    count, err = m + k, m
    redis.call('ZADD', cand, count, v)
    redis.call('HSET', S_STATE, efield, m)
  end
  local sure = count - err
  if sure < 1 then return end
  if redis.call('ZCARD', top) >= limit then
    local low = redis.call('ZRANGE', top, 0, 0, 'WITHSCORES')
    if sure <= 2 * tonumber(low[2]) then return end
    demote(s, low[1])
  end
  promote(s, v, sure)
end

-- The tag of a unit entering with raw value v (after this batch's ranking).
local function fold(s, v)
  if v == false or v == nil then return false end
  if declared[s][v] then return 'd|' .. v end
  local epoch = epoch_of(s, v)
  if epoch then return epoch .. '|' .. v end
  return ''
end

-- Whether a tag still names a row (a ranked value may have lost its row since).
local valid_cache = {}
local function valid(s, tag)
  local id = s .. '\1' .. tag
  local known = valid_cache[id]
  if known == nil then
    local bar = string.find(tag, '|', 1, true)
    local epoch, v = string.sub(tag, 1, bar - 1), string.sub(tag, bar + 1)
    if epoch == 'd' then
      known = declared[s][v] == true
    else
      known = epoch_of(s, v) == epoch
    end
    valid_cache[id] = known
  end
  return known
end

-- Accumulated deltas per (hour, variant, folded segment values): {hi, variant, segs, vector}.
local acc, order = {}, {}
local function vector(hi, variant, folded, from)
  local id = hi .. '\1' .. variant
  for s = 1, S do id = id .. '\1' .. (folded[from + s] or '\2') end
  local entry = acc[id]
  if not entry then
    local vec = {}
    for k = 1, K do vec[k] = 0 end
    local copy = {}
    for s = 1, S do copy[s] = folded[from + s] end
    entry = {hi, variant, copy, vec}
    acc[id] = entry
    order[#order + 1] = entry
  end
  return entry[4]
end

local entered, mismatches, excluded = 0, 0, 0
local new_states = {}
local units = batch.units
local G0 = 1 + 3 * M -- size of a group
local Y, D, X = 1 + S, 1 + S + M, 1 + S + 2 * M -- offsets in a state
local states = {}
for from = 1, #units, 1000 do
  local ids = {}
  for i = from, math.min(from + 999, #units) do ids[#ids + 1] = units[i][1] end
  local got = redis.call('HMGET', KEYS[2], unpack(ids))
  for j = 1, #ids do states[from + j - 1] = got[j] end
end

-- Rank the undeclared segment values of the units entering now, largest first.
if S > 0 then
  local entering = {}
  for s = 1, S do entering[s] = {} end
  local function bump(s, v, k)
    if v ~= false and v ~= nil and not declared[s][v] then
      entering[s][v] = (entering[s][v] or 0) + k
    end
  end
  for i = 1, #units do
    local u = units[i]
    if not states[i] and u[2] ~= '' then
      for s = 1, S do bump(s, u[3 + s], 1) end
    end
  end
  for _, c in ipairs(batch.cells) do
    for s = 1, S do bump(s, c[2 + s], c[3 + S]) end
  end
  for s = 1, S do
    local order = {}
    for v, k in pairs(entering[s]) do order[#order + 1] = {v, k} end
    table.sort(order, function(a, b)
      if a[2] ~= b[2] then return a[2] > b[2] end
      return a[1] < b[1]
    end)
    for _, pair in ipairs(order) do rank(s, pair[1], pair[2]) end
  end
end

if #units > 0 then
  for i = 1, #units do
    local u = units[i]
    local variant = u[2]
    local st
    local entering = false
    if states[i] then
      st = cmsgpack.unpack(states[i])
      if variant ~= '' and variant ~= st[1] then mismatches = mismatches + 1 end
    elseif variant ~= '' then
      st = {variant}
      for s = 1, S do st[1 + s] = fold(s, u[3 + s]) end
      for m = 1, M do
        st[Y + m] = 0
        st[D + m] = 0
        st[X + m] = false
      end
      entering = true
      entered = entered + 1
    else
      excluded = excluded + u[3]
    end
    if st then
      local groups = u[4 + S]
      local at = 4 + S -- index of the group count; group g starts at at + 1 + (g - 1) * G0
      for g = 1, groups do
        local base = at + 1 + (g - 1) * G0
        local vec = vector(u[base], st[1], st, 1)
        if entering and g == 1 then vec[1] = vec[1] + 1 end
        for m = 1, M do
          local oy, od, ox = st[Y + m], st[D + m], st[X + m]
          local gy, gd, gx = u[base + m], u[base + M + m], u[base + 2 * M + m]
          local ny, nd, nx = oy, od + gd, ox
          if is_prop[m] then
            if gy > 0 then ny = 1 end
          else
            ny = oy + gy
          end
          if nx == false and gx ~= false then nx = gx end
          if ny ~= oy or nd ~= od or nx ~= ox then
            -- A ratio unit with a zero denominator adds nothing to either sum.
            local ey_old, ey_new = oy, ny
            local b = 1 + (m - 1) * 8
            if is_ratio[m] then
              if od == 0 then ey_old = 0 end
              if nd == 0 then ey_new = 0 end
              vec[b + 3] = vec[b + 3] + (nd - od)
              vec[b + 4] = vec[b + 4] + (nd * nd - od * od)
              vec[b + 5] = vec[b + 5] + (ey_new * nd - ey_old * od)
            end
            vec[b + 1] = vec[b + 1] + (ey_new - ey_old)
            vec[b + 2] = vec[b + 2] + (ey_new * ey_new - ey_old * ey_old)
            local x_old, x_new = ox or 0, nx or 0
            if x_old ~= 0 or x_new ~= 0 then
              vec[b + 6] = vec[b + 6] + (x_new - x_old)
              vec[b + 7] = vec[b + 7] + (x_new * x_new - x_old * x_old)
              vec[b + 8] = vec[b + 8] + (x_new * ey_new - x_old * ey_old)
            end
            st[Y + m], st[D + m], st[X + m] = ny, nd, nx
          end
        end
      end
      new_states[#new_states + 1] = u[1]
      new_states[#new_states + 1] = cmsgpack.pack(st)
    end
  end
end

for _, c in ipairs(batch.cells) do
  local folded = {}
  for s = 1, S do folded[s] = fold(s, c[2 + s]) end
  local vec = vector(c[1], c[2], folded, 0)
  for k = 1, K do vec[k] = vec[k] + c[2 + S + k] end
end

-- Expand each (hour, variant, segment tags) vector into the cells it feeds: the whole
-- population, and per segment its 'any' cell and the row of the unit's value (if it
-- still has one). Table keys are 'N' (a unit count, an integer) or 'F' (a float sum)
-- followed by the hash field.
local totals, hourly = {}, {}
local function add(hi, field, delta)
  totals[field] = (totals[field] or 0) + delta
  local h = hourly[hi]
  if not h then h = {}; hourly[hi] = h end
  h[field] = (h[field] or 0) + delta
end
for _, entry in ipairs(order) do
  local hi, variant, folded, vec = entry[1], entry[2], entry[3], entry[4]
  local suffixes = {''}
  for s = 1, S do
    local tag = folded[s]
    -- A tag without '|' is a plain value stored before rows were ranked: no cell at all.
    if tag and (tag == '' or string.find(tag, '|', 1, true)) then
      suffixes[#suffixes + 1] = '|' .. segs[s]
      if tag ~= '' and valid(s, tag) then
        suffixes[#suffixes + 1] = '|' .. segs[s] .. '|' .. tag
      end
    end
  end
  for _, suffix in ipairs(suffixes) do
    if vec[1] ~= 0 then add(hi, 'N' .. variant .. '||n' .. suffix, vec[1]) end
    for m = 1, M do
      local prefix = 'F' .. variant .. '|' .. names[m] .. '|'
      local b = 1 + (m - 1) * 8
      for k = 1, 8 do
        local delta = vec[b + k]
        if delta ~= 0 then add(hi, prefix .. CODES[k] .. suffix, delta) end
      end
    end
  end
end

for _, delta in pairs(totals) do
  if delta ~= delta or delta == math.huge or delta == -math.huge then
    return redis.error_reply('non-finite statistic in batch')
  end
end

-- Writes. Numbers are formatted with 17 significant digits: Lua's own conversion keeps 14.
for from = 1, #new_states, 1000 do
  redis.call('HSET', KEYS[2], unpack(new_states, from, math.min(from + 999, #new_states)))
end
local function write(key, fields)
  for field, delta in pairs(fields) do
    if string.byte(field, 1) == 78 then -- 'N'
      redis.call('HINCRBY', key, string.sub(field, 2), string.format('%d', delta))
    else
      redis.call('HINCRBYFLOAT', key, string.sub(field, 2), string.format('%.17g', delta))
    end
  end
end
write(KEYS[3], totals)
for hi, fields in pairs(hourly) do
  write(KEYS[HOUR0 + hi], fields)
  redis.call('SADD', KEYS[4], batch.hours[hi])
end
for name, delta in pairs(batch.counters) do
  if delta ~= 0 then redis.call('HINCRBY', KEYS[6], name, string.format('%d', delta)) end
end
if entered > 0 then redis.call('HINCRBY', KEYS[6], 'units', entered) end
if mismatches > 0 then redis.call('HINCRBY', KEYS[6], 'variant_mismatch', mismatches) end
if excluded > 0 then redis.call('HINCRBY', KEYS[6], 'excluded', excluded) end
redis.call('XACK', KEYS[1], group, unpack(batch.ids))
return {1, entered, mismatches}
