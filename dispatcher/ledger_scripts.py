"""Lua scripts of the chunk ledger: each state change and its counters in one atomic step.

Chunk states: ``pending → sending → accepted | rejected | ambiguous``;
``sending|ambiguous → pending`` (provably not sent, or reconciled as never
arrived). Every script that moves recipients also moves the job's counters
(``c:pending`` …) in the same step, so at every instant
``total = pending + sending + accepted + delivered + failed + rejected + unknown + cancelled
+ suppressed`` (ambiguous recipients count as sending: their fate is not known yet).

Per-phone states live in a string key, one byte per phone in chunk order:
``A`` accepted and awaiting a receipt, ``X`` rejected at submit, ``D`` delivered,
``F`` failed, ``U`` unknown (no receipt within 72 h), ``C`` cancelled before it was
submitted, ``S`` suppressed (written when the job is stored, in chunks no script claims:
``Ledger.create_job``). ``X D F U C S`` are terminal. Beside it, each phone's record (``rec``,
five bytes a phone) holds the index of its last vendor code in the chunk's
``codes`` table (``code<TAB>text`` lines, index 1 first, 0 = none) and the time of
its last change as an offset from the chunk's ``t0`` (see :mod:`dispatcher.deliveries`).

Every script that makes a recipient final also appends it to the outcome feed
(one stream entry per chunk and change: the chunk's member and the phones'
indexes, two bytes each, or ``*`` for all) and checks whether its job has just
been fully submitted or finished; each event is queued once (``ev:s`` / ``ev:f``
in the job hash) for the app's task.
Phones are stored fixed-width (the chunk's ``w``: 11 digits, or 15 left-padded with zeros
in a chunk of international numbers; no separator); APPLY_RECEIPTS pads a receipt's number to
the chunk's width and finds a
phone's index through the chunk's ``ix`` hash table (built on the first receipt,
every hit checked against the stored phones), else with one plain ``string.find``.

Every mutating script checks the chunk's ``attempt`` so a stale actor (a
redelivered task, a late answer) cannot overwrite a newer decision.

Per-phone frequency caps (:mod:`dispatcher.caps`) are counted by CLAIM; a phone it held
back is recorded ``X`` with code ``capped`` by whichever script makes the chunk final
(ACCEPT, APPLY_RECEIPTS, REJECT), and RELEASE, REJECT and a cancel give back the counts
of a claim that did not send (see ``_CAPS``).
"""

from __future__ import annotations

from dispatcher.limiter_scripts import TAKE_SLOT

# The claim also takes the sender's rate-limit slot and returns what the sender
# needs (phones, payloads), so sending a chunk costs one round trip before the
# HTTP call. The slot is only taken for a chunk that can be claimed; a chunk
# whose slot is further than reserve_ms away is left pending ('wait').
# With cap arguments (dispatcher/caps.py) it also counts each phone against its
# account's frequency caps: a phone over a cap is held back (returned in 'held',
# two bytes an index; the chunk's 'cap' keeps it for the outcome scripts, which
# record it rejected with code 'capped'); a chunk whose every phone is held takes
# no slot and answers 'capped' (the caller rejects it whole: nothing to send).
# KEYS: chunk, job, z:sending, paused, z:pending, then the limits' tat1, slow1, …
# ARGV: now_ms, member, then (with limits only) reserve_ms, interval1_ms, burst1, …, then (with
# caps only) CapRule.script_args, and last the claimer (worker node name and process id), kept
# in 'by' so an operator, or a drill after a kill -9, can tell whose chunks were in flight.
# Returns {'ok', attempt, phones, payloads or '', wait_ms, width, held} | {'wait', wait_ms}
#       | {'paused', reason} | {'skip', state} | {'cancelled', ''} | {'capped', attempt}
# (assembled below, once the record and cap functions it calls are defined)
_CLAIM = """
local reason = redis.call('GET', KEYS[4])
if reason then return {'paused', reason} end
local c = redis.call('HMGET', KEYS[1], 'state', 'size', 'phones', 'payloads', 'w', 'ct')
if c[1] ~= 'pending' then return {'skip', c[1] or 'missing'} end
-- A cancelled job's chunk the cancel has not reached yet: the caller cancels it.
if redis.call('HEXISTS', KEYS[2], 'cancel') == 1 then return {'cancelled', ''} end
local now_s = math.floor(tonumber(ARGV[1]) / 1000)
-- a count an earlier claim took and never gave back (undone before it was sent) is not this one's
cap_return(KEYS[1], c[6], now_s)
local size = tonumber(c[2])
local a = 3 + ((#KEYS > 5) and (#KEYS - 4) or 0)  -- the cap arguments, after the limits'
local plan = nil
if #ARGV > a then plan = cap_plan(c[3], tonumber(c[5] or '11'), now_s, a) end
-- nothing to send: no slot taken; claimed all the same, so the caller's REJECT records it
local all_held = plan ~= nil and #plan.held_i == size
local wait = 0
if #KEYS > 5 and not all_held then
  local taken
  taken, wait = take_slot(5, 3, tonumber(ARGV[3]))
  if not taken then return {'wait', string.format('%.3f', wait)} end
end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'state', 'sending', 'since', ARGV[1], 'by', ARGV[#ARGV])
redis.call('HINCRBY', KEYS[2], 'c:pending', -size)
redis.call('HINCRBY', KEYS[2], 'c:sending', size)
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
local held = ''
if plan then held = cap_apply(KEYS[1], plan, now_s, a) end
if all_held then return {'capped', tostring(attempt)} end
return {'ok', tostring(attempt), c[3], c[4] or '', string.format('%.3f', wait), c[5] or '11', held}
"""


# Shared: per-phone records, the code table, the outcome feed and job events.
_RECORD = """
local BIAS = 2147483648
local function time_bytes(at, t0)
  local v = tonumber(at) - tonumber(t0) + BIAS
  if v < 1 then v = 1 end  -- 0 reads as 'no time of its own: t0'
  if v > 4294967295 then v = 4294967295 end
  return string.char(math.floor(v / 16777216) % 256, math.floor(v / 65536) % 256, math.floor(v / 256) % 256,
                     v % 256)
end
-- A chunk's code table, loaded once per call: entry text -> index (1..255).
local tables = {}
local function code_index(chunk, entry)
  if entry == nil or entry == '' or entry == '\\t' then return 0 end
  local t = tables[chunk]
  if not t then
    t = {map = {}, n = 0}
    local text = redis.call('HGET', chunk, 'codes')
    if text then
      for line in string.gmatch(text, '[^\\n]+') do t.n = t.n + 1; t.map[line] = t.n end
    end
    tables[chunk] = t
  end
  local i = t.map[entry]
  if i then return i end
  if t.n >= 254 then
    entry = 'other\\t'
    i = t.map[entry]
    if i then return i end
  end
  t.n = t.n + 1
  t.map[entry] = t.n
  if t.n == 1 then redis.call('HSET', chunk, 'codes', entry)
  else redis.call('HSET', chunk, 'codes', redis.call('HGET', chunk, 'codes') .. '\\n' .. entry) end
  return t.n
end
local function copy_ttl(from, to)
  local ttl = redis.call('TTL', from)
  if ttl > 0 then redis.call('EXPIRE', to, ttl) end
end
-- Every phone of a chunk gets one record: code 'ci', time t0 (the chunk's 't0' becomes now).
local function init_records(chunk, rec_key, size, now, ci)
  redis.call('HSET', chunk, 't0', now)
  redis.call('SET', rec_key, string.rep(string.char(ci) .. '\\0\\0\\0\\0', size))
  copy_ttl(chunk, rec_key)
end
local function set_record(chunk, rec_key, idx, ci, at)
  local t0 = redis.call('HGET', chunk, 't0') or at
  redis.call('SETRANGE', rec_key, idx * 5, string.char(ci) .. time_bytes(at, t0))
end
local function pack_index(i)
  return string.char(math.floor(i / 256), i % 256)
end
local function feed(feed_key, feed_max, member, indexes)
  if indexes == '' then return end
  redis.call('XADD', feed_key, 'MAXLEN', '~', feed_max, '*', 'm', member, 'i', indexes)
end
local function job_events(job, events_key, job_id, now)
  local c = redis.call('HMGET', job, 'c:pending', 'c:sending', 'c:accepted', 'ev:s', 'ev:f', 'total')
  if not c[6] then return end  -- expired: nothing to tell, and HSET would recreate it
  local open = (tonumber(c[1]) or 0) + (tonumber(c[2]) or 0)
  if open == 0 and not c[4] then
    redis.call('HSET', job, 'ev:s', now)
    redis.call('ZADD', events_key, now, job_id .. '|submitted')
  end
  if open + (tonumber(c[3]) or 0) == 0 and not c[5] then
    redis.call('HSET', job, 'ev:f', now)
    redis.call('ZADD', events_key, now, job_id .. '|finished')
  end
end
"""

# Per-phone frequency caps (dispatcher/caps.py). A phone's count is its record under the
# entry's caps of one job priority: its last send times, 4-byte big-endian epoch seconds,
# oldest first, in the hash bucket of its number in the current epoch's keys (head ..
# epoch .. ':' .. bucket, keys.Keys.cap_head); the first send of an epoch carries the last
# epoch's live times over, so a record is read from this epoch, else from the last one.
# A claim that counts leaves 'ct' = "seconds|epoch length|buckets|head" on its chunk:
# the count it holds, given back (cap_return) when the chunk is released to be sent again
# or rejected whole (not sent), or by the next claim or a cancel if neither happened (a
# claim undone before it was sent). 'cap' holds the latest claim's capped phones, three
# bytes each: index (2) and the index of its 'capped' entry in the chunk's code table.
_CAPS = """
local function be4(t)
  return string.char(math.floor(t / 16777216) % 256, math.floor(t / 65536) % 256, math.floor(t / 256) % 256,
                     t % 256)
end
local function unbe4(s, p)
  local a, b, c, d = string.byte(s, p, p + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end
-- a phone as counted: the stored number without a wide chunk's zero padding
local function cap_field(phones, width, i)
  local phone = string.sub(phones, i * width + 1, (i + 1) * width)
  if width ~= 11 then phone = string.match(phone, '^0*(.-)$') end
  return phone
end
local function cap_bucket(field, buckets)
  return string.format('%d', (tonumber(field) or 0) % buckets)
end
local function cap_return(chunk, ct, now_s)
  if not ct then return end
  redis.call('HDEL', chunk, 'ct')
  local t, e, b, head = string.match(ct, '^(%d+)|(%d+)|(%d+)|(.*)$')
  t, e, b = tonumber(t), tonumber(e), tonumber(b)
  local f = redis.call('HMGET', chunk, 'phones', 'w', 'cap')
  local phones, width, held = f[1] or '', tonumber(f[2] or '11'), f[3] or ''
  local skip = {}
  for p = 1, #held - 2, 3 do
    local hi, lo = string.byte(held, p, p + 1)
    skip[hi * 256 + lo] = true
  end
  -- the claim's epoch, and this one: a later send to the phone carried the time over
  local epochs = {string.format('%d', math.floor(t / e))}
  if math.floor(now_s / e) > math.floor(t / e) then epochs[2] = string.format('%d', math.floor(now_s / e)) end
  local mark = be4(t)
  for i = 0, math.floor(#phones / width) - 1 do
    if not skip[i] then
      local field = cap_field(phones, width, i)
      local bucket = cap_bucket(field, b)
      for _, epoch in ipairs(epochs) do
        local key = head .. epoch .. ':' .. bucket
        local v = redis.call('HGET', key, field)
        if v then
          for p = #v - 3, 1, -4 do
            if string.sub(v, p, p + 3) == mark then
              v = string.sub(v, 1, p - 1) .. string.sub(v, p + 4)
              if v == '' then redis.call('HDEL', key, field) else redis.call('HSET', key, field, v) end
              break
            end
          end
        end
      end
    end
  end
end
-- Phase one of a capped claim, reads only: the phones a cap holds back (held_i: index, held_j:
-- cap number) and the record each other phone gets (keys, fields, values). ARGV[a…]: head, epoch
-- length, buckets, times kept, number of caps, then per cap its count, window_s and record entry.
-- A send counts against a cap while it is at most window_s whole seconds old (so no window ever
-- holds more than count). A phone with no live record (most of a campaign) takes the short way.
local function cap_plan(phones, width, now_s, a)
  local head, e, b, keep, k = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]),
                              tonumber(ARGV[a + 4])
  local counts, since = {}, {}
  for j = 1, k do
    counts[j], since[j] = tonumber(ARGV[a + 2 + 3 * j]), now_s - tonumber(ARGV[a + 3 + 3 * j])
  end
  local live, stamp, epoch = now_s - e, be4(now_s), math.floor(now_s / e)
  local cur, prev = head .. string.format('%d', epoch) .. ':', head .. string.format('%d', epoch - 1) .. ':'
  local plan = {held_i = {}, held_j = {}, keys = {}, fields = {}, values = {}, expire_at = (epoch + 2) * e + 60}
  local held_i, held_j, keys, fields, values = plan.held_i, plan.held_j, plan.keys, plan.fields, plan.values
  local padded = width ~= 11
  for i = 0, math.floor(#phones / width) - 1 do
    local field = string.sub(phones, i * width + 1, (i + 1) * width)
    if padded then field = string.match(field, '^0*(.-)$') end
    local bucket = string.format('%d', (tonumber(field) or 0) % b)
    local v = redis.call('HGET', cur .. bucket, field) or redis.call('HGET', prev .. bucket, field)
    local value, hit = stamp, nil
    if v then
      local times = {}
      for p = 1, #v - 3, 4 do
        local t = unbe4(v, p)
        if t >= live then times[#times + 1] = t end
      end
      for j = 1, k do
        local n = 0
        for x = 1, #times do
          if times[x] >= since[j] then n = n + 1 end
        end
        if n >= counts[j] then
          hit = j
          break
        end
      end
      if not hit and #times > 0 then
        times[#times + 1] = now_s
        if now_s < times[#times - 1] then table.sort(times) end  -- a claimer's clock behind another's
        local parts = {}
        for x = math.max(1, #times - keep + 1), #times do parts[#parts + 1] = be4(times[x]) end
        value = table.concat(parts)
      end
    end
    if hit then
      held_i[#held_i + 1], held_j[#held_j + 1] = i, hit
    else
      local w = #keys + 1
      keys[w], fields[w], values[w] = cur .. bucket, field, value
    end
  end
  return plan
end
-- Phase two, once the chunk is claimed: count the sends, keep the held phones on the chunk.
local function cap_apply(chunk, plan, now_s, a)
  local keys, fields, values = plan.keys, plan.fields, plan.values
  for w = 1, #keys do
    -- a bucket just created gets its expiry once (every writer of an epoch sets the same)
    if redis.call('HSET', keys[w], fields[w], values[w]) == 1 and redis.call('HLEN', keys[w]) == 1 then
      redis.call('EXPIREAT', keys[w], plan.expire_at)
    end
  end
  if #keys > 0 then
    redis.call('HSET', chunk, 'ct', string.format('%d', now_s) .. '|' .. ARGV[a + 1] .. '|' .. ARGV[a + 2] .. '|'
               .. ARGV[a])
  end
  local held, packed = {}, {}
  for h = 1, #plan.held_i do
    local i, ci = plan.held_i[h], code_index(chunk, ARGV[a + 4 + 3 * plan.held_j[h]])
    held[h] = string.char(math.floor(i / 256), i % 256, ci)
    packed[h] = string.char(math.floor(i / 256), i % 256)
  end
  if #held > 0 then redis.call('HSET', chunk, 'cap', table.concat(held)) else redis.call('HDEL', chunk, 'cap') end
  return table.concat(packed)
end
"""

CLAIM = TAKE_SLOT + _RECORD + _CAPS + _CLAIM

# Cancel a pending chunk: every phone 'C', counted, on the feed (a cap count it still holds given
# back: it carries the cap functions, so every script that cancels has them). Returns its size
# (0 if not pending).
_CANCEL_CHUNK = _CAPS + """
local function cancel_chunk(chunk, job, st_key, rec_key, zpend, feed_key, feed_max, member, now, ci)
  local c = redis.call('HMGET', chunk, 'state', 'size')
  if c[1] ~= 'pending' then return 0 end
  local size = tonumber(c[2])
  cap_return(chunk, redis.call('HGET', chunk, 'ct'), math.floor(tonumber(now) / 1000))
  redis.call('HSET', chunk, 'state', 'cancelled', 'since', now)
  redis.call('SET', st_key, string.rep('C', size))
  copy_ttl(chunk, st_key)
  init_records(chunk, rec_key, size, now, ci or 0)
  redis.call('HINCRBY', job, 'c:pending', -size)
  redis.call('HINCRBY', job, 'c:cancelled', size)
  redis.call('ZREM', zpend, member)
  feed(feed_key, feed_max, member, '*')
  return size
end
"""

# Undo a claim whose request never left because no replica confirmed it (Sentinel's
# WAIT timed out): pending again at the attempt before, so the attempt number is
# used by the next claim (nothing was sent under it, so no receipt can name it) and a
# replica down for a while does not count attempts towards SMSD_MAX_ATTEMPTS.
# KEYS: chunk, job, z:sending, z:pending   ARGV: now_ms, member, attempt, code
# Returns 1, or 0 if the chunk is no longer sending at that attempt (not ours to move)
UNCLAIM = """
if redis.call('HGET', KEYS[1], 'state') ~= 'sending' then return 0 end
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[3] then return 0 end
local size = tonumber(redis.call('HGET', KEYS[1], 'size'))
redis.call('HSET', KEYS[1], 'state', 'pending', 'since', ARGV[1], 'code', ARGV[4], 'attempt', tonumber(ARGV[3]) - 1)
redis.call('HINCRBY', KEYS[2], 'c:sending', -size)
redis.call('HINCRBY', KEYS[2], 'c:pending', size)
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[1], ARGV[2])
return 1
"""

# Release a chunk to be sent again; in a cancelled job it is cancelled instead
# (provably not sent, or its ambiguous send reconciled as never arrived). Its cap counts
# are given back; its 'cap' (held phones) stays, for a late receipt that proves the
# released attempt did arrive (APPLY_RECEIPTS then records them as that attempt held them).
# KEYS: chunk, job, z:sending, z:ambiguous, z:pending, st, rec, feed, events
# ARGV: now_ms, member, expected_state, attempt, code, feed_max, job_id
# Returns 1 (pending again), 2 (cancelled) or 0 (not ours to move)
RELEASE = _RECORD + _CANCEL_CHUNK + """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= ARGV[3] or redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[4] then return 0 end
-- the attempt's cap counts are given back: the next claim counts its own send
cap_return(KEYS[1], redis.call('HGET', KEYS[1], 'ct'), math.floor(tonumber(ARGV[1]) / 1000))
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
if redis.call('HEXISTS', KEYS[2], 'cancel') == 1 then
  -- its records keep the code of the attempt that came back unsent
  cancel_chunk(KEYS[1], KEYS[2], KEYS[6], KEYS[7], KEYS[5], KEYS[8], ARGV[6], ARGV[2], ARGV[1],
               code_index(KEYS[1], ARGV[5] .. '\\t'))
  job_events(KEYS[2], KEYS[9], ARGV[7], ARGV[1])
  return 2
end
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
_ACCEPT_ALL = _RECORD + """
local function accept_all(chunk, job, st_key, zsend, zamb, zawait, member, now, from_state, zpend, rec_key)
  local size = tonumber(redis.call('HGET', chunk, 'size'))
  redis.call('SET', st_key, string.rep('A', size))
  copy_ttl(chunk, st_key)
  init_records(chunk, rec_key, size, now, 0)
  redis.call('HSET', chunk, 'state', 'accepted', 'since', now)
  redis.call('HINCRBY', job, 'c:' .. from_state, -size)
  redis.call('HINCRBY', job, 'c:accepted', size)
  redis.call('ZREM', zsend, member)
  redis.call('ZREM', zamb, member)
  if zpend then redis.call('ZREM', zpend, member) end
  redis.call('ZADD', zawait, now, member)
end
local function mark(st_key, job, idx, byte, chunk, rec_key, ci, now)
  local cur = redis.call('GETRANGE', st_key, idx, idx)
  if cur ~= 'A' then return 0 end
  redis.call('SETRANGE', st_key, idx, byte)
  set_record(chunk, rec_key, idx, ci, now)
  redis.call('HINCRBY', job, 'c:accepted', -1)
  local field = ({X='c:rejected', D='c:delivered', F='c:failed', U='c:unknown'})[byte]
  redis.call('HINCRBY', job, field, 1)
  return 1
end
-- The phones a cap held back from the chunk's latest claim (its 'cap'), rejected as the gateway's
-- own per-phone refusals are (mark: state byte 'X', the index of its 'capped' entry in the chunk's
-- code table, c:accepted -> c:rejected; the caller feeds the returned packed indexes to the
-- outcome feed). Called right after accept_all, when every phone is 'A' with an empty record, so
-- the writes of a chunk's many held phones are made at once: its state and record strings
-- rebuilt once and the counters moved once, not six commands a phone.
local function mark_capped(chunk, job, st_key, rec_key, now)
  local held, out = redis.call('HGET', chunk, 'cap'), {}
  if not held then return out end
  local cis = {}
  for p = 1, #held - 2, 3 do
    local hi, lo, ci = string.byte(held, p, p + 2)
    if not cis[hi * 256 + lo] then
      cis[hi * 256 + lo] = ci
      out[#out + 1] = pack_index(hi * 256 + lo)
    end
  end
  local size = tonumber(redis.call('HGET', chunk, 'size'))
  local states, records = {}, {}
  for i = 0, size - 1 do
    local ci = cis[i]
    states[i + 1] = ci and 'X' or 'A'
    records[i + 1] = string.char(ci or 0) .. '\\0\\0\\0\\0'
  end
  redis.call('SET', st_key, table.concat(states), 'KEEPTTL')
  redis.call('SET', rec_key, table.concat(records), 'KEEPTTL')
  redis.call('HINCRBY', job, 'c:accepted', -#out)
  redis.call('HINCRBY', job, 'c:rejected', #out)
  return out
end
local function counter_of(state)
  if state == 'ambiguous' then return 'sending' end
  return state  -- pending, sending, cancelled
end
"""

# The message id is kept on the chunk and indexed (P:mid:…, same TTL) for lookups.
# KEYS: chunk, job, st, z:sending, z:ambiguous, z:awaiting, rec, message key, feed, events
# ARGV: now_ms, member, attempt, message_id, feed_max, job_id,
#       the failed phones' codes ("code<TAB>text" lines, one per index), failed indexes (0-based) ...
ACCEPT = _ACCEPT_ALL + """
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[3] then return 'stale' end
local state = redis.call('HGET', KEYS[1], 'state')
local result = 'ok'
local marked = {}
if state == 'sending' or state == 'ambiguous' then
  accept_all(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[2], ARGV[1], counter_of(state), nil,
             KEYS[7])
  marked = mark_capped(KEYS[1], KEYS[2], KEYS[3], KEYS[7], ARGV[1])
elseif state == 'accepted' then
  result = 'late'  -- its receipts arrived before the send's answer was recorded
else
  return 'skip:' .. tostring(state)
end
-- A late answer (receipts proved the chunk first) names it only if they did not: an
-- answer repeated, or one whose id another chunk also claims, changes nothing.
if ARGV[4] ~= '' and (result == 'ok' or not redis.call('HGET', KEYS[1], 'mid')) then
  redis.call('HSET', KEYS[1], 'mid', ARGV[4])
  redis.call('SET', KEYS[8], ARGV[2])
  copy_ttl(KEYS[1], KEYS[8])
end
local codes, rejected = {}, #marked
for line in string.gmatch(ARGV[7], '[^\\n]+') do codes[#codes + 1] = line end
for i = 8, #ARGV do
  local idx = tonumber(ARGV[i])
  local ci = code_index(KEYS[1], codes[i - 7])
  if mark(KEYS[3], KEYS[2], idx, 'X', KEYS[1], KEYS[7], ci, ARGV[1]) == 1 then
    rejected = rejected + 1
    marked[#marked + 1] = pack_index(idx)
  end
end
redis.call('HINCRBY', KEYS[1], 'nrej', rejected)
feed(KEYS[9], ARGV[5], ARGV[2], table.concat(marked))
job_events(KEYS[2], KEYS[10], ARGV[6], ARGV[1])
return result
"""

# The gateway refused the whole chunk: every phone 'X' with its code, except those a cap held
# back, which keep their 'capped' entry. Nothing was sent: the claim's cap counts are given back.
# KEYS: chunk, job, st, z:sending, z:ambiguous, rec, feed, events
# ARGV: now_ms, member, attempt, code, feed_max, job_id, "code<TAB>text" for every phone
REJECT = _RECORD + _CAPS + """
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[3] then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'sending' and state ~= 'ambiguous' then return 0 end
local size = tonumber(redis.call('HGET', KEYS[1], 'size'))
redis.call('SET', KEYS[3], string.rep('X', size))
copy_ttl(KEYS[1], KEYS[3])
local ci = code_index(KEYS[1], ARGV[7])
local held = redis.call('HGET', KEYS[1], 'cap')
if held then
  -- the phones a cap held back keep their cap's entry (the records written once, not once a phone)
  local cis, parts = {}, {}
  for p = 1, #held - 2, 3 do
    local hi, lo, hci = string.byte(held, p, p + 2)
    cis[hi * 256 + lo] = hci
  end
  for i = 0, size - 1 do parts[i + 1] = string.char(cis[i] or ci) .. '\\0\\0\\0\\0' end
  redis.call('HSET', KEYS[1], 't0', ARGV[1])
  redis.call('SET', KEYS[6], table.concat(parts))
  copy_ttl(KEYS[1], KEYS[6])
else
  init_records(KEYS[1], KEYS[6], size, ARGV[1], ci)
end
cap_return(KEYS[1], redis.call('HGET', KEYS[1], 'ct'), math.floor(tonumber(ARGV[1]) / 1000))
redis.call('HSET', KEYS[1], 'state', 'rejected', 'since', ARGV[1], 'code', ARGV[4], 'nrej', size)
redis.call('HINCRBY', KEYS[2], 'c:sending', -size)
redis.call('HINCRBY', KEYS[2], 'c:rejected', size)
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
feed(KEYS[7], ARGV[5], ARGV[2], '*')
job_events(KEYS[2], KEYS[8], ARGV[6], ARGV[1])
return 1
"""

# A phone's index in a chunk's fixed-width phones (a match must start on a phone's
# boundary), or nil. Shared by APPLY_RECEIPTS and LOOKUP_PHONE.
_FIND_INDEX = """
local function find_index(phones, width, phone)
  local init = 1
  while true do
    local pos = string.find(phones, phone, init, true)
    if not pos then return nil end
    if (pos - 1) % width == 0 then return (pos - 1) / width end
    init = pos + 1
  end
end
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
# Each applied receipt also writes the phone's record (its code and time: the
# receipt's own time when it had one, else now) and joins the call's feed entry
# of its chunk. A chunk accepted by receipts learns its message id from them.
# KEYS: stats, z:sending, z:ambiguous, z:awaiting, z:pending, stream, feed, events,
#       then per chunk: chunk, job, st, rec, message key
# ARGV: now_ms, group, n_ids, id1 … id_n, unmatched (receipts whose id was not ours), feed_max,
#       then per chunk: member, attempt, phones (comma-joined), bytes (one 'D' or 'F' per phone), owner,
#       codes ("code<TAB>text" per receipt, newline-joined), times (ms per receipt, comma-joined, "" = now),
#       message id (or ""), job id
# (strings per chunk rather than arguments per receipt: packing and unpacking
# ~1,200 arguments per call was most of the client's time)
# Returns "applied ignored transition" per chunk, in KEYS order, ';'-joined
APPLY_RECEIPTS = _ACCEPT_ALL + _FIND_INDEX + """
local IX_BUILDS_MAX = 8
local FIELD = {D = 'c:delivered', F = 'c:failed'}
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
-- a receipt's number as a chunk of this width stores it (wide chunks pad with zeros)
local function padded(phone, width)
  if #phone < width and width ~= 11 then return string.rep('0', width - #phone) .. phone end
  return phone
end
local function names_a_phone(list, phones, width)
  for phone in string.gmatch(list, '[^,]+') do
    phone = padded(phone, width)
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
local feed_max = ARGV[5 + n_ids]
local foreign, unclaimed = 0, 0
local job_ids = {}
local a = 6 + n_ids
for c = 0, (#KEYS - 8) / 5 - 1 do
  local chunk, job, st_key, rec_key, mid_key = KEYS[9 + 5 * c], KEYS[10 + 5 * c], KEYS[11 + 5 * c],
                                               KEYS[12 + 5 * c], KEYS[13 + 5 * c]
  local member, attempt, list, bytes, owner = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local code_list, time_list, mid = ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  job_ids[job] = ARGV[a + 8]
  local count = #bytes
  a = a + 9
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
      or ((state == 'pending' or state == 'cancelled') and n_attempt == n_current and meta[6] ~= attempt) then
    unclaimed = unclaimed + count
    emit(0, count, 'unclaimed')
  else
    if n_attempt < n_current then older = older + count end
    local held = {}  -- phones the claim's caps held back, rejected as the chunk is accepted
    if (state == 'sending' or state == 'ambiguous' or state == 'pending' or state == 'cancelled')
        and names_a_phone(list, meta[4] or '', tonumber(meta[3] or '11')) then
      accept_all(chunk, job, st_key, KEYS[2], KEYS[3], KEYS[4], member, now, counter_of(state), KEYS[5], rec_key)
      held = mark_capped(chunk, job, st_key, rec_key, now)
      if mid ~= '' and not redis.call('HGET', chunk, 'mid') then
        redis.call('HSET', chunk, 'mid', mid)
        redis.call('SET', mid_key, member)
        copy_ttl(chunk, mid_key)
      end
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
      local done, applied, from, cfrom, tfrom, changed = {}, 0, 1, 1, 1, held
      for r = 1, count do
        local stop = string.find(list, ',', from, true)
        local phone = padded(string.sub(list, from, (stop or 0) - 1), width)
        local byte = string.sub(bytes, r, r)
        if stop then from = stop + 1 end
        local cstop = string.find(code_list, '\\n', cfrom, true)
        local entry = string.sub(code_list, cfrom, (cstop or 0) - 1)
        if cstop then cfrom = cstop + 1 else cfrom = #code_list + 2 end
        local tstop = string.find(time_list, ',', tfrom, true)
        local at = tonumber(string.sub(time_list, tfrom, (tstop or 0) - 1)) or tonumber(now)
        if tstop then tfrom = tstop + 1 else tfrom = #time_list + 2 end
        local idx = nil
        if #phone == width then
          if ix then idx = ix_index(ix, phones, width, phone) else idx = find_index(phones, width, phone) end
        end
        if idx and not done[idx] and FIELD[byte] and string.byte(st, idx + 1) == 65 then  -- 65 = 'A'
          done[idx] = true
          redis.call('SETRANGE', st_key, idx, byte)
          set_record(chunk, rec_key, idx, code_index(chunk, entry), at)
          changed[#changed + 1] = pack_index(idx)
          m[byte] = m[byte] + 1
          applied = applied + 1
        end
      end
      feed(KEYS[7], feed_max, member, table.concat(changed))
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
  job_events(job, KEYS[8], job_ids[job], now)
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
# KEYS: chunk, job, st, z:awaiting, rec, feed, events   ARGV: member, now_ms, feed_max, job_id
# Returns the number marked.
EXPIRE_AWAITING = _ACCEPT_ALL + """
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return 0
end
local st = redis.call('GET', KEYS[3]) or ''
local marked, changed = 0, {}
local pos = string.find(st, 'A', 1, true)
while pos do
  if mark(KEYS[3], KEYS[2], pos - 1, 'U', KEYS[1], KEYS[5], 0, ARGV[2]) == 1 then
    marked = marked + 1
    changed[#changed + 1] = pack_index(pos - 1)
  end
  pos = string.find(st, 'A', pos + 1, true)
end
redis.call('ZREM', KEYS[4], ARGV[1])
feed(KEYS[6], ARGV[3], ARGV[1], table.concat(changed))
job_events(KEYS[2], KEYS[7], ARGV[4], ARGV[2])
return marked
"""

# Cancel a job: mark it (CLAIM and RELEASE then cancel what they meet), take it off
# the schedule, and cancel these of its chunks that are still pending.
# KEYS: job, z:pending, z:scheduled, feed, events, then per chunk: chunk, st, rec
# ARGV: now_ms, job_id, feed_max, then per chunk: member
# Returns the number of recipients cancelled by this call.
CANCEL = _RECORD + _CANCEL_CHUNK + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local open = redis.call('HMGET', KEYS[1], 'c:pending', 'c:sending')
-- A job with nothing left to submit has nothing to cancel: it stays as it ended.
if (tonumber(open[1]) or 0) + (tonumber(open[2]) or 0) == 0 then return 0 end
redis.call('HSETNX', KEYS[1], 'cancel', ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[2])
local total = 0
for c = 0, (#KEYS - 5) / 3 - 1 do
  total = total + cancel_chunk(KEYS[6 + 3 * c], KEYS[1], KEYS[7 + 3 * c], KEYS[8 + 3 * c], KEYS[2], KEYS[4],
                               ARGV[3], ARGV[4 + c], ARGV[1])
end
job_events(KEYS[1], KEYS[5], ARGV[2], ARGV[1])
return total
"""

# Index a chunk's phones for lookups by phone: each phone's bucket of the index of
# the UTC day its job expires gets a 7-byte ref (job number, chunk number)
# appended. Keys of a day expire together at its end plus a grace, so they
# outlive every job they name and need no cleaning. The bucket keys are built
# here from the day's prefix (phone mod the bucket count, as keys.phone_bucket_of):
# passing a thousand keys per chunk cost more than the writes themselves. (Not
# for Redis Cluster, which the multi-chunk scripts do not support either.)
# KEYS: day's job map, days
# ARGV: expire_at_s, expire_at_ms, day, job number, job id, ref, phones (fixed width, joined), width,
#       bucket key prefix, bucket count
INDEX_PHONES = """
redis.call('HSET', KEYS[1], ARGV[4], ARGV[5])
redis.call('EXPIREAT', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local width, phones, ref, prefix, buckets = tonumber(ARGV[8]), ARGV[7], ARGV[6], ARGV[9], tonumber(ARGV[10])
local count = math.floor(#phones / width)
for i = 0, count - 1 do
  local phone = string.sub(phones, i * width + 1, (i + 1) * width)
  local key = prefix .. string.format('%d', (tonumber(phone) or 0) % buckets)
  if redis.call('HSETNX', key, phone, ref) == 0 then
    redis.call('HSET', key, phone, redis.call('HGET', key, phone) .. ref)
  elseif redis.call('HLEN', key) == 1 then
    -- a bucket just created: every job of its day shares the day's expiry, so it is set
    -- once (an EXPIREAT a phone would be a second write to the AOF for each)
    redis.call('EXPIREAT', key, ARGV[1])
  end
end
return count
"""

# Take a job's refs out of a day's phone index (a job that could not be stored
# whole). The first command deletes, which Redis allows at maxmemory.
# KEYS: day's job map, then one bucket per phone   ARGV: job number, its 4 bytes, phones (joined), width
UNINDEX_PHONES = """
redis.call('HDEL', KEYS[1], ARGV[1])
local width, phones = tonumber(ARGV[4]), ARGV[3]
for i = 0, #KEYS - 2 do
  local key, phone = KEYS[2 + i], string.sub(phones, i * width + 1, (i + 1) * width)
  local refs = redis.call('HGET', key, phone)
  if refs then
    local kept = {}
    for r = 1, #refs - 6, 7 do
      if string.sub(refs, r, r + 3) ~= ARGV[2] then kept[#kept + 1] = string.sub(refs, r, r + 6) end
    end
    if #kept == 0 then redis.call('HDEL', key, phone)
    elseif #kept * 7 < #refs then redis.call('HSET', key, phone, table.concat(kept)) end
  end
end
return 1
"""

# A phone's records in every live day's index, read in place: each ref is resolved
# to its job, the phone is found in its chunk, and only what its record needs is
# returned (not the chunk's 11 KB of phones). Chunk keys are built from the parts
# keys.py gives (``Keys.chunk_parts``): the refs name chunks no caller knows yet.
# The live days come from the days index in the same call (one round trip in all:
# on a VM's loopback each one costs ~0.5 ms), their keys from ``Keys.phone_index_head``.
# A number has one form per chunk width it can be stored at (as itself, or zero-padded
# in a wide chunk of international numbers); all are looked for in the same call.
# KEYS: days   ARGV: now_ms, phone index head, bucket, chunk key head, chunk key middle, forms…
# Returns a flat list, 12 items a record, newest day and newest ref first:
#   job id, chunk number, state, since, t0, mid, codes, width, state byte, record (5 bytes), index, form
LOOKUP_PHONE = _FIND_INDEX + """
local out = {}
local days = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
table.sort(days, function(x, y) return tonumber(x) > tonumber(y) end)
for _, day in ipairs(days) do
 local jobs_key = ARGV[2] .. day .. ':jobs'
 for a = 6, #ARGV do
  local phone = ARGV[a]
  local refs = redis.call('HGET', ARGV[2] .. day .. ':' .. ARGV[3], phone)
  if refs then
    for r = #refs - 6, 1, -7 do  -- newest ref last: walk backwards
      local b1, b2, b3, b4, c1, c2, c3 = string.byte(refs, r, r + 6)
      local no = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
      local job_id = redis.call('HGET', jobs_key, tostring(no))
      if job_id then
        local n = tostring((c1 * 256 + c2) * 256 + c3)
        local chunk = ARGV[4] .. job_id .. ARGV[5] .. n
        local f = redis.call('HMGET', chunk, 'state', 'since', 't0', 'mid', 'codes', 'phones', 'w')
        if f[6] then
          local width = tonumber(f[7] or '11')
          local idx = find_index(f[6], width, phone)
          if idx then
            local st = redis.call('GETRANGE', chunk .. ':st', idx, idx)
            local rec = redis.call('GETRANGE', chunk .. ':rec', idx * 5, idx * 5 + 4)
            for _, v in ipairs({job_id, n, f[1] or '', f[2] or '', f[3] or '', f[4] or '', f[5] or '',
                                tostring(width), st, rec, tostring(idx), phone}) do
              out[#out + 1] = v
            end
          end
        end
      end
    end
  end
 end
end
return out
"""

# The chunks vendor message ids name, read in the same call as the ids (one round trip).
# KEYS: message keys   ARGV: chunk key head, chunk key middle
# Returns a flat list, 10 items a chunk: member, state, since, t0, mid, codes, phones, width, states, records
LOOKUP_MESSAGE = """
local out = {}
for _, key in ipairs(KEYS) do
  local member = redis.call('GET', key)
  if member then
    local job_id, n = string.match(member, '^(.*):(%d+)$')
    if job_id then
      local chunk = ARGV[1] .. job_id .. ARGV[2] .. n
      local f = redis.call('HMGET', chunk, 'state', 'since', 't0', 'mid', 'codes', 'phones', 'w')
      if f[6] then
        for _, v in ipairs({member, f[1] or '', f[2] or '', f[3] or '', f[4] or '', f[5] or '', f[6], f[7] or '11',
                            redis.call('GET', chunk .. ':st') or '', redis.call('GET', chunk .. ':rec') or ''}) do
          out[#out + 1] = v
        end
      end
    end
  end
end
return out
"""

# Move a route job's chunks still pending to another account (dispatcher.route_failover):
# each becomes 'cancelled' (every phone 'C', its record carrying the given code, e.g.
# "rerouted<TAB>to aiofish:b") and counted in 'c:rerouted' besides 'c:cancelled', in the
# same step that checks it is pending. CLAIM moves a chunk pending -> sending in one step
# too, so a chunk is either claimed (and stays with this account) or moved, never both.
# The route send's hash counts them in 'moving' in the same step, until the failover has stored
# them on the next account (ROUTE_STATUS counts them pending meanwhile).
# KEYS: job, z:pending, feed, events, route send, then per chunk: chunk, st, rec
# ARGV: now_ms, job_id, feed_max, code entry, then per chunk: member
# Returns the numbers of the chunks moved.
REROUTE = _RECORD + _CANCEL_CHUNK + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local moved, total = {}, 0
for c = 0, (#KEYS - 5) / 3 - 1 do
  local chunk = KEYS[6 + 3 * c]
  if redis.call('HGET', chunk, 'state') == 'pending' then
    local size = cancel_chunk(chunk, KEYS[1], KEYS[7 + 3 * c], KEYS[8 + 3 * c], KEYS[2], KEYS[3], ARGV[3],
                              ARGV[5 + c], ARGV[1], code_index(chunk, ARGV[4]))
    redis.call('HINCRBY', KEYS[1], 'c:rerouted', size)
    total = total + size
    moved[#moved + 1] = string.match(ARGV[5 + c], ':(%d+)$')
  end
end
if #moved > 0 then
  redis.call('HINCRBY', KEYS[5], 'moving', total)
  job_events(KEYS[1], KEYS[4], ARGV[2], ARGV[1])
end
return moved
"""

# A route send's jobs' counters read in one step (a consistent sum while the failover moves
# recipients: they are in the source job, or in 'moving', or in the target job, never two).
# KEYS: route send   ARGV: job key head, then the counter fields to read
# Returns {route send's fields (flat HGETALL), then per job: job id, its values of ARGV[2..]}
ROUTE_STATUS = """
local fields = redis.call('HGETALL', KEYS[1])
local out = {fields}
for i = 1, #fields, 2 do
  local name = fields[i]
  if string.sub(name, 1, 2) == 'j:' then
    local id = string.sub(name, 3)
    out[#out + 1] = id
    out[#out + 1] = redis.call('HMGET', ARGV[1] .. id, unpack(ARGV, 2))
  end
end
return out
"""
