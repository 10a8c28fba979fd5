"""Lua scripts of the chunk ledger: each state change and its counters in one atomic step.

Chunk states: ``pending → sending → accepted | rejected | ambiguous``;
``sending|ambiguous → pending`` (provably not sent, or reconciled as never
arrived). Every script that moves recipients also moves the job's counters
(``c:pending`` …) in the same step, so at every instant
``total = pending + sending + accepted + delivered + failed + rejected + unknown``
(ambiguous recipients count as sending: their fate is not known yet).

Per-phone states live in a string key, one byte per phone in chunk order:
``A`` accepted and awaiting a receipt, ``X`` rejected at submit, ``D`` delivered,
``F`` failed, ``U`` unknown (no receipt within 72 h). ``X D F U`` are terminal.
Phones are stored fixed-width (11 digits, no separator); APPLY_RECEIPTS finds a
phone's index through the chunk's ``ix`` hash table (built on the first receipt,
every hit checked against the stored phones), else with one plain ``string.find``.

Every mutating script checks the chunk's ``attempt`` so a stale actor (a
redelivered task, a late answer) cannot overwrite a newer decision.
"""

from __future__ import annotations

from dispatcher.limiter_scripts import TAKE_SLOT

# The claim also takes the sender's rate-limit slot and returns what the sender
# needs (phones, payloads), so sending a chunk costs one round trip before the
# HTTP call. The slot is only taken for a chunk that can be claimed; a chunk
# whose slot is further than reserve_ms away is left pending ('wait').
# KEYS: chunk, job, z:sending, paused, z:pending, then the limits' tat1, slow1, …
# ARGV: now_ms, member, then (with limits only) reserve_ms, interval1_ms, burst1, …, and last the
# claimer (worker node name and process id), kept in 'by' so an operator, or a
# drill after a kill -9, can tell whose chunks were in flight.
# Returns {'ok', attempt, phones, payloads or '', wait_ms} | {'wait', wait_ms}
#       | {'paused', reason} | {'skip', state}
CLAIM = TAKE_SLOT + """
local reason = redis.call('GET', KEYS[4])
if reason then return {'paused', reason} end
local c = redis.call('HMGET', KEYS[1], 'state', 'size', 'phones', 'payloads')
if c[1] ~= 'pending' then return {'skip', c[1] or 'missing'} end
local wait = 0
if #KEYS > 5 then
  local taken
  taken, wait = take_slot(5, 3, tonumber(ARGV[3]))
  if not taken then return {'wait', string.format('%.3f', wait)} end
end
local size = tonumber(c[2])
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'state', 'sending', 'since', ARGV[1], 'by', ARGV[#ARGV])
redis.call('HINCRBY', KEYS[2], 'c:pending', -size)
redis.call('HINCRBY', KEYS[2], 'c:sending', size)
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
return {'ok', tostring(attempt), c[3], c[4] or '', string.format('%.3f', wait)}
"""

# KEYS: chunk, job, z:sending, z:ambiguous, z:pending
# ARGV: now_ms, member, expected_state, attempt, code
RELEASE = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= ARGV[3] or redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[4] then return 0 end
local size = tonumber(redis.call('HGET', KEYS[1], 'size'))
redis.call('HSET', KEYS[1], 'state', 'pending', 'since', ARGV[1], 'code', ARGV[5])
-- Released after its fate was unknown: a late receipt of this attempt still proves it
-- arrived. An attempt released after a provable non-send joins the chunk's 'ux' list
-- (",1,3,"), so no receipt naming it can settle or touch the chunk, now or after a
-- later attempt (APPLY_RECEIPTS).
if state == 'ambiguous' then
  redis.call('HSET', KEYS[1], 'ra', ARGV[4])
else
  redis.call('HSET', KEYS[1], 'ux', (redis.call('HGET', KEYS[1], 'ux') or ',') .. ARGV[4] .. ',')
end
redis.call('HINCRBY', KEYS[2], 'c:sending', -size)
redis.call('HINCRBY', KEYS[2], 'c:pending', size)
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[1], ARGV[2])
return 1
"""

# KEYS: chunk, z:sending, z:ambiguous   ARGV: now_ms, member, attempt, deadline_ms, code
AMBIGUOUS = """
if redis.call('HGET', KEYS[1], 'state') ~= 'sending' then return 0 end
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'ambiguous', 'since', ARGV[1], 'code', ARGV[5])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
return 1
"""

# Shared by ACCEPT and APPLY_RECEIPTS: move a sending/ambiguous/pending chunk to
# accepted with every phone 'A'. Returns nothing; caller checked the state.
_ACCEPT_ALL = """
local function accept_all(chunk, job, st_key, zsend, zamb, zawait, member, now, from_state, zpend)
  local size = tonumber(redis.call('HGET', chunk, 'size'))
  redis.call('SET', st_key, string.rep('A', size))
  local ttl = redis.call('TTL', chunk)
  if ttl > 0 then redis.call('EXPIRE', st_key, ttl) end
  redis.call('HSET', chunk, 'state', 'accepted', 'since', now)
  redis.call('HINCRBY', job, 'c:' .. from_state, -size)
  redis.call('HINCRBY', job, 'c:accepted', size)
  redis.call('ZREM', zsend, member)
  redis.call('ZREM', zamb, member)
  if zpend then redis.call('ZREM', zpend, member) end
  redis.call('ZADD', zawait, now, member)
end
local function mark(st_key, job, idx, byte)
  local cur = redis.call('GETRANGE', st_key, idx, idx)
  if cur ~= 'A' then return 0 end
  redis.call('SETRANGE', st_key, idx, byte)
  redis.call('HINCRBY', job, 'c:accepted', -1)
  local field = ({X='c:rejected', D='c:delivered', F='c:failed', U='c:unknown'})[byte]
  redis.call('HINCRBY', job, field, 1)
  return 1
end
local function counter_of(state)
  if state == 'ambiguous' then return 'sending' end
  return state
end
"""

# KEYS: chunk, job, st, z:sending, z:ambiguous, z:awaiting
# ARGV: now_ms, member, attempt, message_id, failed indexes (0-based) ...
ACCEPT = _ACCEPT_ALL + """
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[3] then return 'stale' end
local state = redis.call('HGET', KEYS[1], 'state')
local result = 'ok'
if state == 'sending' or state == 'ambiguous' then
  accept_all(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[2], ARGV[1], counter_of(state))
elseif state == 'accepted' then
  result = 'late'  -- its receipts arrived before the send's answer was recorded
else
  return 'skip:' .. tostring(state)
end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'mid', ARGV[4]) end
local rejected = 0
for i = 5, #ARGV do rejected = rejected + mark(KEYS[3], KEYS[2], tonumber(ARGV[i]), 'X') end
redis.call('HINCRBY', KEYS[1], 'nrej', rejected)
return result
"""

# KEYS: chunk, job, st, z:sending, z:ambiguous   ARGV: now_ms, member, attempt, code
REJECT = """
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[3] then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'sending' and state ~= 'ambiguous' then return 0 end
local size = tonumber(redis.call('HGET', KEYS[1], 'size'))
redis.call('SET', KEYS[3], string.rep('X', size))
local ttl = redis.call('TTL', KEYS[1])
if ttl > 0 then redis.call('EXPIRE', KEYS[3], ttl) end
redis.call('HSET', KEYS[1], 'state', 'rejected', 'since', ARGV[1], 'code', ARGV[4], 'nrej', size)
redis.call('HINCRBY', KEYS[2], 'c:sending', -size)
redis.call('HINCRBY', KEYS[2], 'c:rejected', size)
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
return 1
"""

# Apply the receipts of one or more chunks in one atomic step (one call per batch
# of stream entries, instead of one per chunk). Receipts are evidence, not
# commands: a group moves phones only if
#   * the chunk's job belongs to the provider:account the receipts came through
#     (a hook or poll of another account cannot touch it: 'foreign');
#   * it names an attempt that was really claimed and may have been sent: any
#     attempt from 1 to the chunk's current one except those released after a
#     provable non-send ('ux', kept by RELEASE; and, for chunks released before
#     'ux' existed, a pending chunk's current attempt unless it was an ambiguous
#     one released for resend, 'ra'); anything else is 'unclaimed'.
# A receipt of an older attempt is counted ('older': on an accepted chunk, proof
# of a duplicate submission) and, on an accepted chunk, applied (the phone did get
# an SMS).
# A receipt of such an attempt that names a phone of the chunk is proof the attempt
# reached the gateway: a sending, ambiguous or pending chunk becomes accepted before
# its receipts are applied, so it is never sent again. A receipt naming no phone of
# the chunk proves nothing (ignored, 'state:<state>'). Per-phone bytes change with SETRANGE;
# the job counters are summed over the call and moved once per job at its end.
# Stream entries whose receipts these are get XACK'd and XDEL'd in the same step,
# so an entry is applied and acknowledged together or not at all.
# Finding a phone's index: a plain string.find over the chunk's phones costs
# ~4 us per receipt (it stops at every '1'), so the chunk hash keeps a field
# 'ix', an open-addressing table (2 bytes per slot: index + 1, 0 = empty; slot =
# phone as a number mod the slot count, linear probing; a probe hit is checked
# against the phones, so 'ix' can never misplace a receipt). It is built on a
# chunk's first receipts (~0.5 ms; at most IX_BUILDS_MAX per call, so one call
# never blocks Redis long; the others use string.find until a later call builds
# theirs), costs 4 bytes per recipient and is dropped when no phone awaits.
# KEYS: stats, z:sending, z:ambiguous, z:awaiting, z:pending, stream, then per chunk: chunk, job, st
# ARGV: now_ms, group, n_ids, id1 … id_n, unmatched (receipts whose id was not ours),
#       then per chunk: member, attempt, phones (comma-joined), bytes (one 'D' or 'F' per phone), owner
# (strings per chunk rather than arguments per receipt: packing and unpacking
# ~1,200 arguments per call was most of the client's time)
# Returns "applied ignored transition" per chunk, in KEYS order, ';'-joined
APPLY_RECEIPTS = _ACCEPT_ALL + """
local IX_BUILDS_MAX = 8
local FIELD = {D = 'c:delivered', F = 'c:failed'}
local function find_index(phones, width, phone)
  local init = 1
  while true do
    local pos = string.find(phones, phone, init, true)
    if not pos then return nil end
    if (pos - 1) % width == 0 then return (pos - 1) / width end
    init = pos + 1
  end
end
local function build_ix(phones, width)
  local size = math.floor(#phones / width)
  if size > 65534 then return nil end
  local m = 2
  while m < 2 * size do m = m * 2 end
  local slots = {}
  -- in chunk order, so a phone listed twice is found at its first place, as find_index does
  for i = 0, size - 1 do
    local s = (tonumber(string.sub(phones, i * width + 1, (i + 1) * width)) or 0) % m
    while slots[s + 1] do s = (s + 1) % m end
    slots[s + 1] = i + 1
  end
  local bytes, parts = {}, {}
  for s = 1, m do
    local v = slots[s] or 0
    bytes[2 * s - 1], bytes[2 * s] = math.floor(v / 256), v % 256
  end
  for i = 1, 2 * m, 256 do parts[#parts + 1] = string.char(unpack(bytes, i, math.min(i + 255, 2 * m))) end
  return table.concat(parts)
end
local function names_a_phone(list, phones, width)
  for phone in string.gmatch(list, '[^,]+') do
    if #phone == width and find_index(phones, width, phone) then return true end
  end
  return false
end
local function ix_index(ix, phones, width, phone)
  local m = #ix / 2
  local s = (tonumber(phone) or 0) % m
  while true do
    local hi, lo = string.byte(ix, 2 * s + 1, 2 * s + 2)
    local v = hi * 256 + lo
    if v == 0 then return nil end
    if string.sub(phones, (v - 1) * width + 1, v * width) == phone then return v - 1 end
    s = (s + 1) % m
  end
end
local now = ARGV[1]
local n_ids = tonumber(ARGV[3])
local out, moves, job_order, owners = {}, {}, {}, {}
local function emit(applied, ignored, transition)
  out[#out + 1] = applied .. ' ' .. ignored .. ' ' .. transition
end
local unmatched, older, ignored_total, builds = tonumber(ARGV[4 + n_ids]), 0, 0, 0
local foreign, unclaimed = 0, 0
local a = 5 + n_ids
for c = 0, (#KEYS - 6) / 3 - 1 do
  local chunk, job, st_key = KEYS[7 + 3 * c], KEYS[8 + 3 * c], KEYS[9 + 3 * c]
  local member, attempt, list, bytes, owner = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local count = #bytes
  a = a + 5
  local meta = redis.call('HMGET', chunk, 'state', 'attempt', 'w', 'phones', 'ix', 'ra', 'ux')
  local state, transition = meta[1], ''
  local own = owners[job]
  if state and not own then
    local o = redis.call('HMGET', job, 'provider', 'account')
    own = tostring(o[1]) .. ':' .. tostring(o[2])
    owners[job] = own
  end
  local n_attempt, n_current = tonumber(attempt) or 0, tonumber(meta[2]) or 0
  if not state then
    unmatched = unmatched + count
    emit(0, count, 'missing')
  elseif own ~= owner then
    foreign = foreign + count
    emit(0, count, 'foreign')
  elseif n_attempt < 1 or n_attempt > n_current or attempt ~= tostring(n_attempt)
      or (meta[7] and string.find(meta[7], ',' .. attempt .. ',', 1, true))
      or (state == 'pending' and n_attempt == n_current and meta[6] ~= attempt) then
    unclaimed = unclaimed + count
    emit(0, count, 'unclaimed')
  else
    if n_attempt < n_current then older = older + count end
    if (state == 'sending' or state == 'ambiguous' or state == 'pending')
        and names_a_phone(list, meta[4] or '', tonumber(meta[3] or '11')) then
      accept_all(chunk, job, st_key, KEYS[2], KEYS[3], KEYS[4], member, now, counter_of(state), KEYS[5])
      -- Remember how it was settled (drills and operators count reconciliations).
      redis.call('HSET', chunk, 'settled_from', state)
      redis.call('HINCRBY', KEYS[1], 'reconciled:' .. state, 1)
      transition = state .. '->accepted'
      state = 'accepted'
    end
    if state ~= 'accepted' then
      ignored_total = ignored_total + count
      emit(0, count, 'state:' .. state)
    else
      local width, phones, ix = tonumber(meta[3] or '11'), meta[4] or '', meta[5]
      local st = redis.call('GET', st_key) or ''
      if not ix and builds < IX_BUILDS_MAX then
        ix = build_ix(phones, width)
        builds = builds + 1
        if ix then redis.call('HSET', chunk, 'ix', ix) end
      end
      local m = moves[job]
      if not m then
        m = {n = 0, D = 0, F = 0}
        moves[job] = m
        job_order[#job_order + 1] = job
      end
      local done, applied, from = {}, 0, 1
      for r = 1, count do
        local stop = string.find(list, ',', from, true)
        local phone = string.sub(list, from, (stop or 0) - 1)
        local byte = string.sub(bytes, r, r)
        if stop then from = stop + 1 end
        local idx = nil
        if #phone == width then
          if ix then idx = ix_index(ix, phones, width, phone) else idx = find_index(phones, width, phone) end
        end
        if idx and not done[idx] and FIELD[byte] and string.byte(st, idx + 1) == 65 then  -- 65 = 'A'
          done[idx] = true
          redis.call('SETRANGE', st_key, idx, byte)
          m[byte] = m[byte] + 1
          applied = applied + 1
        end
      end
      m.n = m.n + applied
      ignored_total = ignored_total + count - applied
      -- still awaiting: an 'A' this call did not just change
      local pos = string.find(st, 'A', 1, true)
      while pos and done[pos - 1] do pos = string.find(st, 'A', pos + 1, true) end
      if not pos then
        redis.call('ZREM', KEYS[4], member)
        if ix then redis.call('HDEL', chunk, 'ix') end
      end
      emit(applied, count - applied, transition)
    end
  end
end
for _, job in ipairs(job_order) do
  local m = moves[job]
  if m.n > 0 then
    redis.call('HINCRBY', job, 'c:accepted', -m.n)
    if m.D > 0 then redis.call('HINCRBY', job, 'c:delivered', m.D) end
    if m.F > 0 then redis.call('HINCRBY', job, 'c:failed', m.F) end
  end
end
if unmatched > 0 then redis.call('HINCRBY', KEYS[1], 'receipts_unmatched', unmatched) end
if older > 0 then redis.call('HINCRBY', KEYS[1], 'receipts_older_attempt', older) end
if ignored_total > 0 then redis.call('HINCRBY', KEYS[1], 'receipts_ignored', ignored_total) end
if foreign > 0 then redis.call('HINCRBY', KEYS[1], 'receipts_foreign', foreign) end
if unclaimed > 0 then redis.call('HINCRBY', KEYS[1], 'receipts_unclaimed', unclaimed) end
if n_ids > 0 then
  redis.call('XACK', KEYS[6], ARGV[2], unpack(ARGV, 4, 3 + n_ids))
  redis.call('XDEL', KEYS[6], unpack(ARGV, 4, 3 + n_ids))
end
return table.concat(out, ';')
"""

# Mark every still-awaiting phone of a chunk 'U' (no receipt within the horizon).
# A job already expired has no counters to move: HINCRBY would recreate its
# hash as a key with no TTL, so only the index entry is dropped.
# KEYS: chunk, job, st, z:awaiting   ARGV: member   Returns the number marked.
EXPIRE_AWAITING = _ACCEPT_ALL + """
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return 0
end
local st = redis.call('GET', KEYS[3]) or ''
local marked = 0
local pos = string.find(st, 'A', 1, true)
while pos do
  marked = marked + mark(KEYS[3], KEYS[2], pos - 1, 'U')
  pos = string.find(st, 'A', pos + 1, true)
end
redis.call('ZREM', KEYS[4], ARGV[1])
return marked
"""
