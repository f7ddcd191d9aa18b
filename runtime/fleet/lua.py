"""The Lua scripts: every fleet decision is one atomic script in Redis (pure: text only).

The limiter and the breaker are the pure state machines of ``runtime.resilience`` written
again in Lua, step for step (same arithmetic on doubles, same slack ``EPS``, the breaker's
transitions generated from ``breaker.TRANSITIONS`` itself), so the bounds proven for the
local ones hold for the fleet. Time is Redis's own clock (``TIME``, seconds since
``EPOCH``), one clock for every process; a caller may pass ``now`` instead (tests compare
the scripts with the Python objects step by step). Numbers are stored with 17 significant
digits, so a double survives the round trip exactly.
"""

from __future__ import annotations

from ..resilience.breaker import TRANSITIONS
from ..resilience.ratelimit import _EPS

__all__ = ["APPEND", "BREAKER", "BUDGET", "CACHE_DEL", "CACHE_GET", "CACHE_PUT", "CANCEL_QUEUED", "FINISH",
           "LIMITER", "RENEW", "REQUEUE", "TAKE"]

EPOCH = 1_700_000_000  # subtracted from Redis TIME: more of a double's bits for fractions

_PRELUDE = f"""
local function clock(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return (tonumber(t[1]) - {EPOCH}) + tonumber(t[2]) / 1000000
end
local function fmt(x) return string.format('%.17g', x) end
local INF = math.huge
"""

# KEYS[1] the limiter's hash. ARGV: op, now ('' = Redis TIME), requests per minute, tokens
# per minute ('0' = unlimited), then the op's arguments:
#   reserve tokens -> wait (string)     settle actual estimate     hold seconds
#   caps req_remaining req_delay tok_remaining tok_delay ('' = absent; delay '' = none)
#   peek -> {requests level, tokens level, held for}
LIMITER = _PRELUDE + f"""
local EPS = {_EPS!r}
local now = clock(ARGV[2])
local function load(p, per_minute)
  local cap = tonumber(per_minute)
  if cap <= 0 then cap = INF end
  local v = redis.call('HMGET', KEYS[1], p .. 'l', p .. 't', p .. 'cl', p .. 'cu')
  local b = {{p = p, cap = cap, rate = cap / 60}}
  b.level = v[1] and tonumber(v[1]) or cap
  if b.level > cap then b.level = cap end
  b.last = v[2] and tonumber(v[2]) or nil
  b.cl = v[3] and tonumber(v[3]) or INF
  b.cu = v[4] and tonumber(v[4]) or -INF
  return b
end
local function refill(b)
  if b.last == nil or now > b.last then
    if b.last ~= nil and b.level < b.cap then
      local level = b.level + (now - b.last) * b.rate
      if level < b.cap then b.level = level else b.level = b.cap end
    end
    b.last = now
  end
  if b.cu <= now and b.cl ~= INF then b.cl = INF end
end
local function wait_for(b, n)
  refill(b)
  local wait = 0.0
  local tol = EPS * math.max(1.0, n)
  if b.level + tol < n then wait = (n - b.level) / b.rate end
  if b.cl + tol < n then wait = math.max(wait, b.cu - now) end
  return math.max(0.0, wait)
end
local function take(b, n)
  local level = b.level - n
  local tol = EPS * math.max(1.0, n)
  if -tol <= level and level < 0.0 then level = 0.0 end
  b.level = level
  if b.cl ~= INF then b.cl = math.max(0.0, b.cl - n) end
end
local function cap(b, remaining, untl)
  refill(b)
  remaining = math.max(0.0, remaining)
  if untl > now then b.cl, b.cu = remaining, untl
  else b.level = math.min(b.level, remaining) end
end
local function save(b)
  local p = b.p
  if b.level == INF then redis.call('HDEL', KEYS[1], p .. 'l')
  else redis.call('HSET', KEYS[1], p .. 'l', fmt(b.level)) end
  if b.last ~= nil then redis.call('HSET', KEYS[1], p .. 't', fmt(b.last)) end
  if b.cl == INF then redis.call('HDEL', KEYS[1], p .. 'cl', p .. 'cu')
  else redis.call('HSET', KEYS[1], p .. 'cl', fmt(b.cl), p .. 'cu', fmt(b.cu)) end
end
local r = load('r', ARGV[3])
local t = load('t', ARGV[4])
local op = ARGV[1]
local out = 'ok'
local function clamp(x)
  return math.min(math.max(0.0, tonumber(x)), t.cap)
end
if op == 'reserve' then
  local n = clamp(ARGV[5])
  local wait = math.max(wait_for(r, 1.0), wait_for(t, n))
  if wait == 0.0 then take(r, 1.0); take(t, n) end
  out = fmt(wait)
elseif op == 'settle' then
  local delta = math.max(0.0, tonumber(ARGV[5])) - clamp(ARGV[6])
  refill(t)
  if delta < 0 then t.level = math.min(t.cap, t.level - delta)
  elseif delta > 0 then
    t.level = math.max(-t.cap, t.level - delta)
    if t.cl ~= INF then t.cl = math.max(0.0, t.cl - delta) end
  end
elseif op == 'hold' then
  local seconds = tonumber(ARGV[5])
  if seconds > 0 and seconds < INF then
    local untl = now + seconds
    refill(r)
    if not (math.min(r.level, r.cl) == 0.0 and r.cu >= untl) then cap(r, 0.0, untl) end
  end
elseif op == 'caps' then
  if ARGV[5] ~= '' then
    local d = ARGV[6]
    cap(r, tonumber(ARGV[5]), d == '' and now or now + tonumber(d))
  end
  if ARGV[7] ~= '' then
    local d = ARGV[8]
    cap(t, tonumber(ARGV[7]), d == '' and now or now + tonumber(d))
  end
elseif op == 'peek' then
  refill(r); refill(t)
  local held = 0.0
  if r.cl ~= INF then held = math.max(0.0, r.cu - now) end
  return {{fmt(math.min(r.level, r.cl)), fmt(math.min(t.level, t.cl)), fmt(held)}}
end
save(r); save(t)
redis.call('PEXPIRE', KEYS[1], 86400000)
return out
"""


def _transitions() -> str:
    rows = []
    for state, moves in TRANSITIONS.items():
        inner = ", ".join(f"{ev.value} = '{new.value}'" for ev, new in moves.items())
        rows.append(f"{state.value} = {{{inner}}}")
    return "local T = {" + ", ".join(rows) + "}\n"


# KEYS[1] the breaker's hash. ARGV: op, now, failure_threshold, cooldown, then
#   admit -> {allowed 0/1, state, retry_in, probe token ('' = not the probe)}
#   record verdict(failure|success|neutral) probe_token   -> state
BREAKER = _PRELUDE + _transitions() + """
local now = clock(ARGV[2])
local threshold = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 's', 'f', 'o', 'pa', 'pt')
local state = v[1] or 'closed'
local failures = tonumber(v[2] or '0')
local opened = tonumber(v[3] or '0')
local probe_at = v[4] and tonumber(v[4]) or nil
local probe_tok = v[5] or nil
local function fire(ev)
  local new = T[state][ev]
  if new == nil then
    error('circuit breaker: no transition for ' .. ev .. ' in state ' .. state)
  end
  if new == 'open' and state ~= 'open' then opened = now end
  if new ~= 'half_open' then probe_at = nil; probe_tok = nil end
  if new == 'closed' and state ~= 'closed' then failures = 0 end
  state = new
end
local function advance()
  if state == 'open' and now >= opened + cooldown then fire('cooldown') end
  if state == 'half_open' and probe_at ~= nil and now >= probe_at + cooldown then
    probe_at = nil; probe_tok = nil
  end
end
local function retry_in()
  if state == 'open' then return math.max(0.0, opened + cooldown - now) end
  if state == 'half_open' and probe_at ~= nil then
    return math.max(0.0, probe_at + cooldown - now)
  end
  return 0.0
end
local op = ARGV[1]
local out
advance()
if op == 'admit' then
  local allowed, tok = 0, ''
  if state == 'closed' then allowed = 1
  elseif state == 'half_open' and probe_at == nil then
    fire('probe')
    probe_at = now
    probe_tok = tostring(redis.call('HINCRBY', KEYS[1], 'n', 1))
    allowed, tok = 1, probe_tok
  end
  out = {allowed, state, fmt(retry_in()), tok}
elseif op == 'record' then
  local verdict = ARGV[5]
  if verdict == 'failure' then
    if state == 'closed' then
      failures = failures + 1
      if failures >= threshold then fire('trip') else fire('failure') end
    else fire('failure') end
  elseif verdict == 'success' then
    if state == 'closed' then failures = 0 end
    fire('success')
  elseif ARGV[6] ~= '' and state == 'half_open' and probe_tok == ARGV[6] then
    fire('release')
    probe_at = nil; probe_tok = nil
  end
  out = state
else
  out = {state, failures, fmt(retry_in())}
end
redis.call('HSET', KEYS[1], 's', state, 'f', failures, 'o', fmt(opened))
if probe_at ~= nil then redis.call('HSET', KEYS[1], 'pa', fmt(probe_at), 'pt', probe_tok)
else redis.call('HDEL', KEYS[1], 'pa', 'pt') end
redis.call('PEXPIRE', KEYS[1], 86400000)
return out
"""

# KEYS: day, month, session counters. ARGV: op, then
#   check daily monthly session_limit estimate -> '' or which budget ('daily ...')
#   charge cost                                -> the three totals
BUDGET = """
local function spent(k) return tonumber(redis.call('GET', k) or '0') end
if ARGV[1] == 'check' then
  local est = tonumber(ARGV[5])
  local names = {'daily', 'monthly', 'session'}
  for i = 1, 3 do
    local limit = ARGV[i + 1]
    if limit ~= '' then
      local s = spent(KEYS[i])
      if s >= tonumber(limit) or s + est > tonumber(limit) then
        return names[i] .. ' ' .. string.format('%.17g', s) .. ' ' .. limit
      end
    end
  end
  return ''
end
local cost = ARGV[2]
local ttl = {3 * 86400, 40 * 86400, 30 * 86400}
local out = {}
for i = 1, 3 do
  out[i] = redis.call('INCRBYFLOAT', KEYS[i], cost)
  redis.call('EXPIRE', KEYS[i], ttl[i])
end
return out
"""

# KEYS: entry, material, lru, sizes. ARGV: key, response, material, ttl_ms ('' = none),
# max_bytes, now_ms, size, entry key prefix, material key prefix.
CACHE_PUT = """
local key = ARGV[1]
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
local size = tonumber(ARGV[7])
local old = tonumber(redis.call('HGET', KEYS[4], key) or '0')
redis.call('HSET', KEYS[4], key, size)
redis.call('ZADD', KEYS[3], ARGV[6], key)
local total = redis.call('HINCRBY', KEYS[4], '#total', size - old)
local max = tonumber(ARGV[5])
local evicted = 0
while total > max do
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 1)
  local victim = oldest[1]
  if victim == key then victim = oldest[2] end
  if victim == nil then victim = key end
  local vsize = tonumber(redis.call('HGET', KEYS[4], victim) or '0')
  redis.call('DEL', ARGV[8] .. victim, ARGV[9] .. victim)
  redis.call('ZREM', KEYS[3], victim)
  redis.call('HDEL', KEYS[4], victim)
  total = redis.call('HINCRBY', KEYS[4], '#total', -vsize)
  evicted = evicted + 1
  if victim == key then break end
end
return evicted
"""

# KEYS: entry, lru, sizes. ARGV: key, now_ms, material key prefix. A hit is marked used; an
# expired entry's bookkeeping is dropped.
CACHE_GET = """
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
  return v
end
local size = redis.call('HGET', KEYS[3], ARGV[1])
if size then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HINCRBY', KEYS[3], '#total', -tonumber(size))
  redis.call('DEL', ARGV[3] .. ARGV[1])
end
return false
"""

# KEYS: entry, material, lru, sizes. ARGV: key.
CACHE_DEL = """
local size = redis.call('HGET', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if size then
  redis.call('HDEL', KEYS[4], ARGV[1])
  redis.call('HINCRBY', KEYS[4], '#total', -tonumber(size))
end
return 1
"""

# KEYS: session hash, journal stream. ARGV: token, then (id, field, value) triples. Only
# the owner appends (fencing); ids at or below the last one are skipped (a retried batch).
APPEND = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return -1 end
local lms, lseq = -1, -1
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if last[1] then
  local a, b = string.match(last[1][1], '(%d+)-(%d+)')
  lms, lseq = tonumber(a), tonumber(b)
end
local n = 0
for i = 2, #ARGV, 3 do
  local a, b = string.match(ARGV[i], '(%d+)-(%d+)')
  a, b = tonumber(a), tonumber(b)
  if a > lms or (a == lms and b > lseq) then
    redis.call('XADD', KEYS[2], ARGV[i], ARGV[i + 1], ARGV[i + 2])
    lms, lseq = a, b
    n = n + 1
  end
end
if lseq == 0 then redis.call('HSET', KEYS[1], 'seq', lms) end
return n
"""

# KEYS: session hash, lease. ARGV: worker, token, lease_ms, now (epoch). 1 taken; 0 its
# owner is alive; -1 it has finished; -2 no such session.
TAKE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return -2 end
if redis.call('HGET', KEYS[1], 'done') == '1' then return -1 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('HSET', KEYS[1], 'token', ARGV[2], 'worker', ARGV[1], 'status', 'running',
           'claimed_at', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'claims', 1)
return 1
"""

# KEYS: session hash, lease, queue. ARGV: token, lease_ms, group, consumer, entry id.
# 1 renewed (the queue entry's idle time restarts too); 0 the lease was taken.
RENEW = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('XCLAIM', KEYS[3], ARGV[3], ARGV[4], 0, ARGV[5], 'JUSTID')
return 1
"""

# KEYS: session hash, lease, queue, events. ARGV: token, group, entry id, then field/value
# pairs of the outcome (status first). 1 finished now; 0 not the owner; -1 finished before.
FINISH = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'done') == '1' then return -1 end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('HINCRBY', KEYS[1], 'finishes', 1)
redis.call('DEL', KEYS[2])
redis.call('XACK', KEYS[3], ARGV[2], ARGV[3])
redis.call('XDEL', KEYS[3], ARGV[3])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', 100000, '*', 'run',
           redis.call('HGET', KEYS[1], 'run_id'), 'status', ARGV[5])
return 1
"""

# KEYS: session hash, lease, queue. ARGV: token, group, entry id, run id. The owner hands
# the session back (a worker stopping): queued again at the end of the queue.
REQUEUE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'token', '', 'worker', '')
redis.call('DEL', KEYS[2])
redis.call('XACK', KEYS[3], ARGV[2], ARGV[3])
redis.call('XDEL', KEYS[3], ARGV[3])
redis.call('XADD', KEYS[3], '*', 'run', ARGV[4])
return 1
"""

# KEYS: session hash, journal, events. ARGV: the session_end line, ended_at, its stream id (the
# record after the journal's last). A queued session is
# cancelled here (1); a running one must be asked through its control stream (0).
CANCEL_QUEUED = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'exit_code', 130, 'ended_at', ARGV[2],
           'token', 'cancelled', 'done', '1')
redis.call('HINCRBY', KEYS[1], 'finishes', 1)
redis.call('XADD', KEYS[2], ARGV[3], 'l', ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 100000, '*', 'run',
           redis.call('HGET', KEYS[1], 'run_id'), 'status', 'cancelled')
return 1
"""
