-- Apply one pre-aggregated batch of stream entries to the sufficient statistics, then XACK them.
-- Atomic: a crash before it runs leaves the entries pending (they are claimed and applied
-- again); once it has run they are acknowledged. An entry no longer pending for this consumer
-- (another worker claimed or applied it) makes the whole call a no-op that names it.
--
-- KEYS[1] stream, KEYS[2] units hash, KEYS[3] totals hash, KEYS[4] set of hours,
-- KEYS[5] segment values hash, KEYS[6] aggregation meta hash, KEYS[6 + i] hash of hours[i]
-- ARGV[1] consumer group, ARGV[2] consumer, ARGV[3] msgpack batch (built by the worker's
-- service/worker/_preaggregate.py; M metrics, S segments, flat arrays throughout):
--   ids      stream entry ids of the batch
--   counters meta counter -> increment (the backlog is decremented through counters.backlog)
--   names    metric names; kinds: 'm' mean, 'p' proportion, 'r' ratio
--   segs     segment names; limit: distinct values kept per segment (then '__other__')
--   hours    hours since the epoch, by the 1-based hour index used below
--   units    unit-level: {unit_id, variant ('' = not in the experiment), events excluded if
--            the unit is new, S raw segment values (false = missing), G, then G groups sorted
--            by hour, each {hour index, y_1..y_M, d_1..d_M, x_1..x_M}}: y the metric's sum
--            (proportion: 1 if any value > 0), d the ratio denominator sum, x the covariate
--            (false = none)
--   cells    request-level: {hour index, variant, S raw segment values, n, then
--            s q ds dq x cs cq cx for each metric}
-- A unit's state (field unit_id of KEYS[2]) is msgpack {variant, S folded segment values,
-- y_1..y_M, d_1..d_M, x_1..x_M}.
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
local limit = tonumber(batch.limit)
local CODES = {'s', 'q', 'ds', 'dq', 'x', 'cs', 'cq', 'cx'}
local is_ratio, is_prop = {}, {}
for m = 1, M do
  is_ratio[m] = kinds[m] == 'r'
  is_prop[m] = kinds[m] == 'p'
end

local folded_cache = {}
local function fold(s, value)
  if value == false or value == nil then return false end
  local field = segs[s] .. '|' .. value
  local known = folded_cache[field]
  if known then return known end
  if redis.call('HEXISTS', KEYS[5], field) == 1 then
    known = value
  else
    local count = tonumber(redis.call('HGET', KEYS[5], '#' .. segs[s]) or '0')
    if count < limit then
      redis.call('HSET', KEYS[5], field, 1)
      redis.call('HINCRBY', KEYS[5], '#' .. segs[s], 1)
      known = value
    else
      known = '__other__'
    end
  end
  folded_cache[field] = known
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
if #units > 0 then
  local states = {}
  for from = 1, #units, 1000 do
    local ids = {}
    for i = from, math.min(from + 999, #units) do ids[#ids + 1] = units[i][1] end
    local got = redis.call('HMGET', KEYS[2], unpack(ids))
    for j = 1, #ids do states[from + j - 1] = got[j] end
  end
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

-- Expand each (hour, variant, segment values) vector into the cells it feeds: the whole
-- population and one cell per declared segment. Table keys are 'N' (a unit count, an
-- integer) or 'F' (a float sum) followed by the hash field.
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
    if folded[s] then suffixes[#suffixes + 1] = '|' .. segs[s] .. '|' .. folded[s] end
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
  write(KEYS[6 + hi], fields)
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
