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
Phones are stored fixed-width (11 digits, no separator) so a phone's index is
found with one plain ``string.find``.

Every mutating script checks the chunk's ``attempt`` so a stale actor (a
redelivered task, a late answer) cannot overwrite a newer decision.
"""

from __future__ import annotations

# The claim also returns what the sender needs (phones, payloads), so sending a
# chunk costs one round trip before the HTTP call instead of two.
# KEYS: chunk, job, z:sending, paused, z:pending   ARGV: now_ms, member
# Returns {'ok', attempt, phones, payloads or ''} | {'paused', reason} | {'skip', state}
CLAIM = """
local reason = redis.call('GET', KEYS[4])
if reason then return {'paused', reason} end
local c = redis.call('HMGET', KEYS[1], 'state', 'size', 'phones', 'payloads')
if c[1] ~= 'pending' then return {'skip', c[1] or 'missing'} end
local size = tonumber(c[2])
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'state', 'sending', 'since', ARGV[1])
redis.call('HINCRBY', KEYS[2], 'c:pending', -size)
redis.call('HINCRBY', KEYS[2], 'c:sending', size)
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
return {'ok', tostring(attempt), c[3], c[4] or ''}
"""

# KEYS: chunk, job, z:sending, z:ambiguous, z:pending
# ARGV: now_ms, member, expected_state, attempt, code
RELEASE = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= ARGV[3] or redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[4] then return 0 end
local size = tonumber(redis.call('HGET', KEYS[1], 'size'))
redis.call('HSET', KEYS[1], 'state', 'pending', 'since', ARGV[1], 'code', ARGV[5])
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

# Apply receipts of one chunk. A receipt carrying the chunk's current attempt is
# proof that attempt reached the gateway: an ambiguous (or in-flight, or released
# for resend) chunk becomes accepted before its receipts are applied.
# KEYS: chunk, job, st, z:sending, z:ambiguous, z:awaiting, stats, z:pending
# ARGV: now_ms, member, attempt, then pairs phone, byte ('D' or 'F') ...
# Returns {applied, ignored, transition}
APPLY_RECEIPTS = _ACCEPT_ALL + """
local state = redis.call('HGET', KEYS[1], 'state')
local npairs = (#ARGV - 3) / 2
if not state then
  redis.call('HINCRBY', KEYS[7], 'receipts_unmatched', npairs)
  return {0, npairs, 'missing'}
end
local current = redis.call('HGET', KEYS[1], 'attempt')
local transition = ''
if ARGV[3] ~= current then
  redis.call('HINCRBY', KEYS[7], 'receipts_older_attempt', npairs)
elseif state == 'sending' or state == 'ambiguous' or state == 'pending' then
  accept_all(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[2], ARGV[1], counter_of(state), KEYS[8])
  transition = state .. '->accepted'
  state = 'accepted'
end
if state ~= 'accepted' then
  redis.call('HINCRBY', KEYS[7], 'receipts_ignored', npairs)
  return {0, npairs, 'state:' .. state}
end
local phones = redis.call('HGET', KEYS[1], 'phones')
local width = tonumber(redis.call('HGET', KEYS[1], 'w') or '11')
local applied, ignored = 0, 0
for i = 4, #ARGV, 2 do
  local phone, byte = ARGV[i], ARGV[i + 1]
  local init, idx = 1, nil
  while true do
    local pos = string.find(phones, phone, init, true)
    if not pos then break end
    if (pos - 1) % width == 0 then idx = (pos - 1) / width break end
    init = pos + 1
  end
  if idx and mark(KEYS[3], KEYS[2], idx, byte) == 1 then applied = applied + 1 else ignored = ignored + 1 end
end
if ignored > 0 then redis.call('HINCRBY', KEYS[7], 'receipts_ignored', ignored) end
if not string.find(redis.call('GET', KEYS[3]) or '', 'A', 1, true) then
  redis.call('ZREM', KEYS[6], ARGV[2])
end
return {applied, ignored, transition}
"""

# Mark every still-awaiting phone of a chunk 'U' (no receipt within the horizon).
# KEYS: chunk, job, st, z:awaiting   ARGV: member   Returns the number marked.
EXPIRE_AWAITING = _ACCEPT_ALL + """
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

# GCRA limiter over several limits at once: a token is taken from every limit or
# from none (an opass balance call needs its own 1/15 s slot AND the 3/min query
# budget). KEYS: tat1, slow1, tat2, slow2, …   ARGV: interval1_ms, burst1, …
# Uses the Redis clock so every worker on every host shares one time line.
# Returns 0 when the tokens were taken, else the wait in ms before they are due.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local wait, tats, intervals = 0, {}, {}
for i = 1, #KEYS, 2 do
  local j = (i + 1) / 2
  local interval = tonumber(ARGV[2 * j - 1]) * tonumber(redis.call('GET', KEYS[i + 1]) or '1')
  local burst = tonumber(ARGV[2 * j])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local w = tat - now - (burst - 1) * interval
  if w > wait then wait = w end
  tats[j], intervals[j] = tat, interval
end
if wait > 0 then return math.ceil(wait) end
for i = 1, #KEYS, 2 do
  local j = (i + 1) / 2
  local new_tat = tats[j] + intervals[j]
  redis.call('SET', KEYS[i], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 60000)
end
return 0
"""

# KEYS: slowdown   ARGV: factor_max, ttl_ms   Doubles the slow-down factor (≤ max).
SLOW_DOWN = """
local f = tonumber(redis.call('GET', KEYS[1]) or '1') * 2
if f > tonumber(ARGV[1]) then f = tonumber(ARGV[1]) end
redis.call('SET', KEYS[1], f, 'PX', ARGV[2])
return tostring(f)
"""
