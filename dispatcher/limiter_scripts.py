"""Lua scripts of the rate limiter: GCRA over several limits at once, on the Redis clock.

Registered once per connection by :class:`dispatcher.limiter.RateLimiter`.
Keys are built in :mod:`dispatcher.keys` (``rl:…`` theoretical arrival times,
``rlslow:…`` slow-down factors).
"""

from __future__ import annotations

# GCRA limiter over several limits at once: a token is taken from every limit or
# from none (an opass balance call needs its own 1/15 s slot AND the 3/min query
# budget). Uses the Redis clock so every worker on every host shares one time line.
# The tokens' slot is the first instant every limit allows; if it is at most
# reserve_ms away the tokens are taken for that slot now (a reservation: the
# caller sleeps until it), so waiting callers queue for consecutive slots and no
# slot is lost to a caller waking late or to several callers racing for one.
# take_slot(k0, a0, reserve_ms) reads KEYS[k0+1…] as tat1, slow1, tat2, slow2, …
# and ARGV[a0+1…] as interval1_ms, burst1, …; it returns (taken, wait_ms). Shared
# by ACQUIRE and the ledger's claim (one round trip for token and chunk).
TAKE_SLOT = """
local function take_slot(k0, a0, reserve_ms)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local slot, tats, intervals = now, {}, {}
  for i = k0 + 1, #KEYS, 2 do
    local j = (i - k0 + 1) / 2
    local interval = tonumber(ARGV[a0 + 2 * j - 1]) * tonumber(redis.call('GET', KEYS[i + 1]) or '1')
    local burst = tonumber(ARGV[a0 + 2 * j])
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat < now then tat = now end
    local due = tat - (burst - 1) * interval
    if due > slot then slot = due end
    tats[j], intervals[j] = tat, interval
  end
  local wait = slot - now
  if wait > reserve_ms then return false, wait end
  for i = k0 + 1, #KEYS, 2 do
    local j = (i - k0 + 1) / 2
    local new_tat = math.max(tats[j], slot) + intervals[j]
    redis.call('SET', KEYS[i], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 60000)
  end
  return true, wait
end
"""

# KEYS: tat1, slow1, tat2, slow2, …   ARGV: reserve_ms, interval1_ms, burst1, …
# Returns {1, wait_ms} when taken (wait_ms 0: due now), {0, wait_ms} when nothing
# was taken (due further than reserve_ms away). wait_ms is a string (fractions kept).
ACQUIRE = TAKE_SLOT + """
local taken, wait = take_slot(0, 1, tonumber(ARGV[1]))
return {taken and 1 or 0, string.format('%.3f', wait)}
"""

# A reserved slot was used late_ms late (the caller woke late): its slot went by
# unused and its call goes out now, among calls reserved after it. Every limit's
# next free slot moves to at least now, plus one spacing (the limit's interval
# times its slow-down factor) or the lateness if that is less: the late call takes
# a slot again, at the time it really goes out. Not the whole lateness on top of
# the slots already moved: B calls made late by one stall then move the limit back
# by B spacings, which is what they crowded into the windows after them (each
# such window holds either a slot they left unused or this gap), not by B times
# the stall (30 reservations 50 ms late would have cost the account 1.5 s).
# KEYS: tat1, slow1, tat2, slow2, …   ARGV: late_ms, interval1_ms, interval2_ms, …
DEFER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
for i = 1, #KEYS, 2 do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat > 0 then
    local spacing = tonumber(ARGV[(i + 1) / 2 + 1]) * tonumber(redis.call('GET', KEYS[i + 1]) or '1')
    local new_tat = math.max(tat, now) + math.min(tonumber(ARGV[1]), spacing)
    redis.call('SET', KEYS[i], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 60000)
  end
end
return 0
"""

# Doubles the slow-down factor (≤ factor_max) for ttl_ms, unless it was raised
# less than hold_ms ago. The calls in flight when the first throttle answer came
# were sent at the old pace and get throttled too: with 60 requests in flight,
# one overfull window came back as a dozen answers, each doubling, and the
# account ran at 1/16 of its limit for the next minute. Every answer in the
# hold (the limit's window) is that one event. When the factor was raised is
# read off its remaining time to live, so the key stays a plain number.
# KEYS: slowdown   ARGV: factor_max, ttl_ms, hold_ms   Returns the factor now in force.
SLOW_DOWN = """
local f = tonumber(redis.call('GET', KEYS[1]) or '1')
local left = redis.call('PTTL', KEYS[1])
if f > 1 and left > 0 and tonumber(ARGV[2]) - left < tonumber(ARGV[3]) then
  return tostring(f)
end
f = f * 2
if f > tonumber(ARGV[1]) then f = tonumber(ARGV[1]) end
redis.call('SET', KEYS[1], f, 'PX', ARGV[2])
return tostring(f)
"""
