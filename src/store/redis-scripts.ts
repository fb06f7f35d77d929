// The Lua scripts behind RedisStore. Each operation is one script, so it runs atomically and costs
// one round trip (EVALSHA, falling back to EVAL when the server has not cached it yet).
//
// Every script gets the key prefix as ARGV[1] and builds the keys it walks from it. KEYS[1] names
// the record the call is about, which routes the call in a cluster; a cluster keeps every Parley
// key in one hash slot (the prefix carries a hash tag), so keys built inside a script are local.
// The key layout is documented in docs/redis.md and at the top of redis.ts.

import { createHash } from 'node:crypto';

export interface LuaScript {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

/** How long an expiry index outlives its last member, so pruneExpired can still count and clean it. */
export const INDEX_GRACE_MS = 24 * 60 * 60 * 1000;
/**
 * An unfinished turn is kept physically at least this long even when its expiry is already close or
 * past, so finishTurn still finds it; logically it is hidden from its expiry on, like everywhere.
 */
export const IN_PROGRESS_GRACE_MS = 60 * 60 * 1000;

// Helpers shared by every script. Names are local, so scripts stay independent of one another.
const HEADER = `
-- Redis 6.2 replicates scripts verbatim unless told otherwise; TIME needs effects replication.
if redis.replicate_commands then pcall(redis.replicate_commands) end
local P = ARGV[1]
local INDEX_GRACE_MS = ${INDEX_GRACE_MS}

-- Length-prefixed strings ("3:abc"): lists of ids or key names without any reserved character.
local function lp(s) return #s .. ':' .. s end
local function unlp(s, i)
  local out = {}
  i = i or 1
  while s and i <= #s do
    local c = string.find(s, ':', i, true)
    local n = tonumber(string.sub(s, i, c - 1))
    out[#out + 1] = string.sub(s, c + 1, c + n)
    i = c + 1 + n
  end
  return out
end

local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function expiry_ms(e)
  if not e or e == '' then return nil end
  return math.floor(tonumber(e) * 1000)
end

local function live(e, now)
  return (not e) or tonumber(e) > now
end

-- Adds a member to an index sorted set. The index may expire by itself only once every member's
-- data has: at the latest member expiry (+ grace), and never while a member has no expiry.
local function index_add(key, score, member, exp_ms, grace)
  local existed = redis.call('EXISTS', key) == 1
  redis.call('ZADD', key, score, member)
  if not exp_ms then
    redis.call('PERSIST', key)
    return
  end
  local at = exp_ms + grace
  if not existed then
    redis.call('PEXPIREAT', key, at)
    return
  end
  local ttl = redis.call('PTTL', key)
  if ttl >= 0 and server_ms() + ttl < at then redis.call('PEXPIREAT', key, at) end
end

-- HSET of ARGV[from..], in chunks (Lua's unpack has a stack limit); pairs stay aligned.
local function hset_from(key, from)
  local i = from
  while i <= #ARGV do
    local j = math.min(i + 999, #ARGV)
    redis.call('HSET', key, unpack(ARGV, i, j))
    i = j + 1
  end
end

-- The conversation sequence counter lives exactly as long as the index of all conversations.
local function sync_counter()
  local ttl = redis.call('PTTL', P .. 'ca')
  if ttl == -2 then redis.call('DEL', P .. 'n')
  elseif ttl == -1 then redis.call('PERSIST', P .. 'n')
  else redis.call('PEXPIRE', P .. 'n', ttl) end
end

-- Index keys (without the prefix) of a conversation: all, by user, by each metadata pair.
local function suffixes(user, pairs, from, count)
  local s = {'ca'}
  if user then s[#s + 1] = 'cu:' .. user end
  for k = from, from + 2 * count - 1, 2 do
    s[#s + 1] = 'cm:' .. #pairs[k] .. ':' .. pairs[k] .. pairs[k + 1]
  end
  return s
end

-- Appends items (ids[k], jsons[k]) to a conversation whose hash is ckey; e is its expiry field.
local function append(conv, ckey, ids, jsons, e)
  local n = tonumber(redis.call('HGET', ckey, 'n'))
  local ci = P .. 'ci:' .. conv
  local cx = P .. 'cx:' .. conv
  for k = 1, #jsons do
    local pos = n + k - 1
    redis.call('ZADD', ci, pos, pos .. ':' .. jsons[k])
    local id = ids[k]
    if id and id ~= '' then
      local at = redis.call('HGET', cx, id)
      redis.call('HSET', cx, id, at and (at .. ',' .. pos) or tostring(pos))
    end
  end
  redis.call('HSET', ckey, 'n', n + #jsons)
  local exp = expiry_ms(e)
  if exp and #jsons > 0 then
    redis.call('PEXPIREAT', ci, exp)
    redis.call('PEXPIREAT', cx, exp)
  end
end

-- Positions of an item id in a conversation ("3,9"): the first and the last.
local function positions(v)
  local first = string.match(v, '^[^,]+')
  local last = string.match(v, '[^,]+$')
  return first, last
end
`;

// ---------- responses ----------

/**
 * KEYS[1] = r:<id>, KEYS[2] = x.  ARGV: P, expiresAt ('' = none), x member, status, then the
 * response hash as field/value pairs. Returns 1, or 0 when the id exists.
 */
const BEGIN_TURN = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
hset_from(KEYS[1], 5)
local exp = expiry_ms(ARGV[2])
if exp then
  if ARGV[4] == 'in_progress' or ARGV[4] == 'queued' then
    redis.call('PEXPIREAT', KEYS[1], math.max(exp, server_ms() + ${IN_PROGRESS_GRACE_MS}))
  else
    redis.call('PEXPIREAT', KEYS[1], exp)
  end
  index_add(KEYS[2], ARGV[2], ARGV[3], exp, INDEX_GRACE_MS)
end
return 1
`;

/**
 * KEYS[1] = r:<id>.  ARGV: P, now (s), status, then fields to set (s, f, no, ko, o0..). Returns 'ok',
 * 'missing', or the status the response already has. A completed or incomplete turn of a live
 * conversation is appended to it (input, then output) in the same script.
 */
const FINISH_TURN = `
local key = KEYS[1]
local now = tonumber(ARGV[2])
local status = redis.call('HGET', key, 's')
if not status then return 'missing' end
if status ~= 'in_progress' and status ~= 'queued' then return status end
local old = tonumber(redis.call('HGET', key, 'no') or '0')
for k = 0, old - 1 do redis.call('HDEL', key, 'o' .. k) end
hset_from(key, 4)
if ARGV[3] == 'completed' or ARGV[3] == 'incomplete' then
  local conv = redis.call('HGET', key, 'uc')
  if conv then
    local ckey = P .. 'c:' .. conv
    local c = redis.call('HMGET', ckey, 'n', 'e')
    if c[1] and live(c[2], now) then
      local h = redis.call('HMGET', key, 'ki', 'ko', 'ni', 'no')
      local ids = unlp(h[1])
      for _, id in ipairs(unlp(h[2])) do ids[#ids + 1] = id end
      local jsons = {}
      for k = 0, tonumber(h[3]) - 1 do jsons[#jsons + 1] = redis.call('HGET', key, 'i' .. k) end
      for k = 0, tonumber(h[4]) - 1 do jsons[#jsons + 1] = redis.call('HGET', key, 'o' .. k) end
      append(conv, ckey, ids, jsons, c[2])
    end
  end
end
local exp = expiry_ms(redis.call('HGET', key, 'e'))
if exp then redis.call('PEXPIREAT', key, exp) end
return 'ok'
`;

/**
 * KEYS[1] = r:<id>.  ARGV: P, then fields to set (s, no, ko, o0..). Replaces an unfinished turn's
 * status and output; returns 1, or 0 (changing nothing) when the turn is unknown or finished.
 */
const SAVE_PROGRESS = `
local key = KEYS[1]
local status = redis.call('HGET', key, 's')
if status ~= 'in_progress' and status ~= 'queued' then return 0 end
local old = tonumber(redis.call('HGET', key, 'no') or '0')
for k = 0, old - 1 do redis.call('HDEL', key, 'o' .. k) end
hset_from(key, 2)
return 1
`;

/**
 * KEYS[1] = r:<id>.  ARGV: P, now (s), max depth. Walks parent links server-side and returns
 * { stoppedAt, { hash, hash, ... } }, tip first, each hash as a flat field/value list. stoppedAt is
 * false when the walk reached a root, else the id of the missing or expired ancestor (or the tip).
 */
const LOAD_CHAIN = `
local now = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local key = KEYS[1]
local id = false
local chain = {}
while true do
  local h = redis.call('HGETALL', key)
  if #h == 0 then break end
  local e, up = nil, nil
  for i = 1, #h, 2 do
    local f = h[i]
    if f == 'e' then e = h[i + 1] elseif f == 'up' then up = h[i + 1] end
  end
  if not live(e, now) then break end
  chain[#chain + 1] = h
  if not up then
    id = false
    break
  end
  id = up
  if #chain > max then break end
  key = P .. 'r:' .. up
end
return {id, chain}
`;

/** KEYS[1] = r:<id>, KEYS[2] = x.  ARGV: P, x member. Returns 1 when the response existed. */
const DELETE_RESPONSE = `
redis.call('ZREM', KEYS[2], ARGV[2])
return redis.call('DEL', KEYS[1])
`;

/** KEYS[1] = x.  ARGV: P, now (s), batch size. Removes what expired by `now`; returns how many records. */
const PRUNE = `
local now = tonumber(ARGV[2])
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(members) do
  if string.sub(m, 1, 1) == 'r' then
    local key = P .. 'r:' .. string.sub(m, 2)
    local e = redis.call('HGET', key, 'e')
    -- A response recreated under the same id without an expiry is not this record.
    if e and not live(e, now) then redis.call('DEL', key) end
  else
    local parts = unlp(m, 2)
    local q = parts[1]
    local id = string.sub(q, 17)
    for i = 2, #parts do redis.call('ZREM', P .. parts[i], q) end
    local c = redis.call('HMGET', P .. 'c:' .. id, 'q', 'e')
    if (not c[1]) or (c[1] == q and not live(c[2], now)) then
      redis.call('DEL', P .. 'c:' .. id, P .. 'ci:' .. id, P .. 'cx:' .. id)
    end
    if redis.call('EXISTS', P .. 'ca') == 0 then redis.call('DEL', P .. 'n') end
  end
  redis.call('ZREM', KEYS[1], m)
end
return #members
`;

// ---------- conversations ----------

/**
 * KEYS[1] = c:<id>, KEYS[2] = x.  ARGV: P, id, m, md, createdAt, hasUser, user, expiresAt,
 * pair count, pairs..., then (item id, item json) pairs. Returns 1, or 0 when the id exists.
 */
const CREATE_CONVERSATION = `
local ckey = KEYS[1]
if redis.call('EXISTS', ckey) == 1 then return 0 end
local id, t, e = ARGV[2], ARGV[5], ARGV[8]
local user = false
if ARGV[6] == '1' then user = ARGV[7] end
local np = tonumber(ARGV[9])
local seq = redis.call('INCR', P .. 'n')
local q = string.format('%016d', seq) .. id
local sfx = suffixes(user, ARGV, 10, np)
local ix = ''
for _, s in ipairs(sfx) do ix = ix .. lp(s) end
redis.call('HSET', ckey, 'm', ARGV[3], 'md', ARGV[4], 'n', 0, 'q', q, 't', t, 'ix', ix)
if user then redis.call('HSET', ckey, 'u', user) end
local exp = expiry_ms(e)
if exp then redis.call('HSET', ckey, 'e', e) end
for _, s in ipairs(sfx) do index_add(P .. s, t, q, exp, 0) end
sync_counter()
if exp then
  local xm = 'c' .. lp(q) .. ix
  redis.call('HSET', ckey, 'xm', xm)
  index_add(KEYS[2], e, xm, exp, INDEX_GRACE_MS)
end
local ids, jsons = {}, {}
for k = 10 + 2 * np, #ARGV, 2 do
  ids[#ids + 1] = ARGV[k]
  jsons[#jsons + 1] = ARGV[k + 1]
end
append(id, ckey, ids, jsons, e)
if exp then redis.call('PEXPIREAT', ckey, exp) end
return 1
`;

/** KEYS[1] = c:<id>, KEYS[2] = x.  ARGV: P, now, md, pair count, pairs... Returns {m, md, n} or false. */
const UPDATE_CONVERSATION = `
local ckey = KEYS[1]
local h = redis.call('HMGET', ckey, 'q', 'e', 'ix', 'xm', 't', 'u')
if not h[1] or not live(h[2], tonumber(ARGV[2])) then return false end
local q, e, t = h[1], h[2], h[5]
for _, s in ipairs(unlp(h[3])) do redis.call('ZREM', P .. s, q) end
local sfx = suffixes(h[6], ARGV, 5, tonumber(ARGV[4]))
local ix = ''
for _, s in ipairs(sfx) do ix = ix .. lp(s) end
local exp = expiry_ms(e)
for _, s in ipairs(sfx) do index_add(P .. s, t, q, exp, 0) end
sync_counter()
redis.call('HSET', ckey, 'md', ARGV[3], 'ix', ix)
if h[4] then
  redis.call('ZREM', KEYS[2], h[4])
  local xm = 'c' .. lp(q) .. ix
  redis.call('HSET', ckey, 'xm', xm)
  index_add(KEYS[2], e, xm, exp, INDEX_GRACE_MS)
end
return redis.call('HMGET', ckey, 'm', 'md', 'n')
`;

/** KEYS[1] = c:<id>, KEYS[2] = x.  ARGV: P, now, id. Removes every key and index entry; 1 when it was live. */
const DELETE_CONVERSATION = `
local ckey, id = KEYS[1], ARGV[3]
local h = redis.call('HMGET', ckey, 'q', 'e', 'ix', 'xm')
if not h[1] then return 0 end
for _, s in ipairs(unlp(h[3])) do redis.call('ZREM', P .. s, h[1]) end
if h[4] then redis.call('ZREM', KEYS[2], h[4]) end
redis.call('DEL', ckey, P .. 'ci:' .. id, P .. 'cx:' .. id)
if redis.call('EXISTS', P .. 'ca') == 0 then redis.call('DEL', P .. 'n') end
if live(h[2], tonumber(ARGV[2])) then return 1 end
return 0
`;

/** KEYS[1] = c:<id>.  ARGV: P, now, id, then (item id, json) pairs. Returns {m, md, n} or false. */
const APPEND_ITEMS = `
local ckey = KEYS[1]
local e = redis.call('HGET', ckey, 'e')
if redis.call('EXISTS', ckey) == 0 or not live(e, tonumber(ARGV[2])) then return false end
local ids, jsons = {}, {}
for k = 4, #ARGV, 2 do
  ids[#ids + 1] = ARGV[k]
  jsons[#jsons + 1] = ARGV[k + 1]
end
append(ARGV[3], ckey, ids, jsons, e)
return redis.call('HMGET', ckey, 'm', 'md', 'n')
`;

/**
 * KEYS[1] = c:<id>.  ARGV: P, now, id, order, limit (-1 = all), hasAfter, after item id.
 * Returns {0} when the conversation is unknown, else {1, members...} ("<position>:<json>").
 */
const LIST_ITEMS = `
local ckey = KEYS[1]
local e = redis.call('HGET', ckey, 'e')
if redis.call('EXISTS', ckey) == 0 or not live(e, tonumber(ARGV[2])) then return {0} end
local ci = P .. 'ci:' .. ARGV[3]
local desc = ARGV[4] == 'desc'
local limit = tonumber(ARGV[5])
local lo, hi = '-inf', '+inf'
if ARGV[6] == '1' then
  local v = redis.call('HGET', P .. 'cx:' .. ARGV[3], ARGV[7])
  if not v then return {1} end
  local first, last = positions(v)
  if desc then hi = '(' .. last else lo = '(' .. first end
end
local items
if limit < 0 then
  items = redis.call('ZRANGEBYSCORE', ci, lo, hi)
elseif desc then
  items = redis.call('ZREVRANGEBYSCORE', ci, hi, lo, 'LIMIT', 0, limit + 1)
else
  items = redis.call('ZRANGEBYSCORE', ci, lo, hi, 'LIMIT', 0, limit + 1)
end
table.insert(items, 1, 1)
return items
`;

/** KEYS[1] = c:<id>.  ARGV: P, now, id, item id. Returns the member or false. */
const GET_ITEM = `
local ckey = KEYS[1]
local e = redis.call('HGET', ckey, 'e')
if redis.call('EXISTS', ckey) == 0 or not live(e, tonumber(ARGV[2])) then return false end
local v = redis.call('HGET', P .. 'cx:' .. ARGV[3], ARGV[4])
if not v then return false end
local first = positions(v)
local found = redis.call('ZRANGEBYSCORE', P .. 'ci:' .. ARGV[3], first, first)
return found[1] or false
`;

/** KEYS[1] = c:<id>.  ARGV: P, now, id, item id. Removes the first item with that id; 1 when found. */
const DELETE_ITEM = `
local ckey = KEYS[1]
local e = redis.call('HGET', ckey, 'e')
if redis.call('EXISTS', ckey) == 0 or not live(e, tonumber(ARGV[2])) then return 0 end
local cx = P .. 'cx:' .. ARGV[3]
local v = redis.call('HGET', cx, ARGV[4])
if not v then return 0 end
local first = positions(v)
redis.call('ZREMRANGEBYSCORE', P .. 'ci:' .. ARGV[3], first, first)
local rest = string.match(v, '^[^,]+,(.*)$')
if rest then redis.call('HSET', cx, ARGV[4], rest) else redis.call('HDEL', cx, ARGV[4]) end
return 1
`;

/**
 * KEYS[1] = ca.  ARGV: P, now, order, limit, hasAfter, after id, hasUser, user, pair count, pairs...
 * Walks the smallest matching index in order and checks the others; returns {m, md, n} triples,
 * up to limit + 1 of them. Entries whose conversation Redis has already dropped are removed.
 */
const LIST_CONVERSATIONS = `
local now = tonumber(ARGV[2])
local desc = ARGV[3] == 'desc'
local want = tonumber(ARGV[4]) + 1
local sfx = {}
if ARGV[7] == '1' then sfx[1] = 'cu:' .. ARGV[8] end
local np = tonumber(ARGV[9])
for k = 10, 9 + 2 * np, 2 do sfx[#sfx + 1] = 'cm:' .. #ARGV[k] .. ':' .. ARGV[k] .. ARGV[k + 1] end
if #sfx == 0 then sfx[1] = 'ca' end
local drive, smallest = nil, nil
for _, s in ipairs(sfx) do
  local n = redis.call('ZCARD', P .. s)
  if n == 0 then return {} end
  if not smallest or n < smallest then drive, smallest = P .. s, n end
end
local others = {}
for _, s in ipairs(sfx) do if P .. s ~= drive then others[#others + 1] = P .. s end end
local function matches(q)
  for _, k in ipairs(others) do
    if not redis.call('ZSCORE', k, q) then return false end
  end
  return true
end
local start = 0
if ARGV[5] == '1' then
  local a = redis.call('HMGET', P .. 'c:' .. ARGV[6], 'q', 'e')
  if not a[1] or not live(a[2], now) or not matches(a[1]) then return {} end
  local rank
  if desc then rank = redis.call('ZREVRANK', drive, a[1]) else rank = redis.call('ZRANK', drive, a[1]) end
  if not rank then return {} end
  start = rank + 1
end
local out, stale, found = {}, {}, 0
local batch = math.max(want, 100)
while found < want do
  local qs
  if desc then
    qs = redis.call('ZREVRANGE', drive, start, start + batch - 1)
  else
    qs = redis.call('ZRANGE', drive, start, start + batch - 1)
  end
  if #qs == 0 then break end
  for _, q in ipairs(qs) do
    local h = redis.call('HMGET', P .. 'c:' .. string.sub(q, 17), 'm', 'md', 'n', 'e', 'q')
    if not h[1] or h[5] ~= q then
      stale[#stale + 1] = q
    elseif live(h[4], now) and matches(q) then
      out[#out + 1] = h[1]
      out[#out + 1] = h[2]
      out[#out + 1] = h[3]
      found = found + 1
      if found >= want then break end
    end
  end
  start = start + batch
end
for _, q in ipairs(stale) do redis.call('ZREM', drive, q) end
return out
`;

// ---------- leases ----------

/** KEYS[1] = l:<id>.  ARGV: P, holder, ttl ms. Extends the lease when the holder still owns it. */
const RENEW_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
`;

/** KEYS[1] = l:<id>.  ARGV: P, holder. Deletes the lease when the holder still owns it. */
const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[2] then return redis.call('DEL', KEYS[1]) end
return 0
`;

function script(name: string, body: string): LuaScript {
  const lua = `-- parley:${name}\n${HEADER}\n${body}`;
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

export const SCRIPTS = {
  beginTurn: script('beginTurn', BEGIN_TURN),
  finishTurn: script('finishTurn', FINISH_TURN),
  saveProgress: script('saveProgress', SAVE_PROGRESS),
  loadChain: script('loadChain', LOAD_CHAIN),
  deleteResponse: script('deleteResponse', DELETE_RESPONSE),
  prune: script('prune', PRUNE),
  createConversation: script('createConversation', CREATE_CONVERSATION),
  updateConversation: script('updateConversation', UPDATE_CONVERSATION),
  deleteConversation: script('deleteConversation', DELETE_CONVERSATION),
  appendItems: script('appendItems', APPEND_ITEMS),
  listItems: script('listItems', LIST_ITEMS),
  getItem: script('getItem', GET_ITEM),
  deleteItem: script('deleteItem', DELETE_ITEM),
  listConversations: script('listConversations', LIST_CONVERSATIONS),
  renewLease: script('renewLease', RENEW_LEASE),
  releaseLease: script('releaseLease', RELEASE_LEASE),
} as const;
