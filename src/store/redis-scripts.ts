// The Lua scripts behind RedisStore. Each operation is one script, so it runs atomically and costs
// one round trip (EVALSHA, falling back to EVAL when the server has not cached it yet).
//
// Every script gets the key prefix as ARGV[1] and builds the keys it walks from it. KEYS[1] names
// the record the call is about, which routes the call in a cluster; a cluster keeps every Parley
// key in one hash slot (the prefix carries a hash tag), so keys built inside a script are local.
// The key layout is documented in docs/redis.md and at the top of redis.ts.
//
// JSON is never decoded here (Redis' cjson would re-encode numbers and lose key order): records
// hold JSON text written by Node, and the few fields a script needs are kept raw beside it. The one exception is conversation metadata, a flat string -> string object: md_pairs
// splits JSON.stringify's output into its (still encoded) key and value tokens.
//
// A response is one string of fields (see "Response records" in redis.ts); one written before
// that layout is a hash, still read everywhere and finished by the *_V1 scripts.

import { createHash } from 'node:crypto';

export interface LuaScript {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

/** How long the expiry index outlives its last member, so pruneExpired can still count and clean it. */
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
local IN_PROGRESS_GRACE_MS = ${IN_PROGRESS_GRACE_MS}

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

-- The (encoded) key and value tokens of JSON.stringify(Record<string, string>), flat: k1, v1, ...
local function md_pairs(md)
  local out = {}
  local i, n = 2, #md
  while i < n do
    for _ = 1, 2 do
      local j = i + 1
      while true do
        local c = string.byte(md, j)
        if c == 92 then j = j + 2
        elseif c == 34 then break
        else j = j + 1 end
      end
      out[#out + 1] = string.sub(md, i, j)
      i = j + 2
    end
  end
  return out
end

local function md_json(pairs)
  local parts = {}
  for k = 1, #pairs, 2 do parts[#parts + 1] = pairs[k] .. ':' .. pairs[k + 1] end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- Index keys (without the prefix) of a conversation: all of its tenant, by user, by metadata pair.
local function suffixes(tenant, user, pairs)
  local s = {'ca:' .. tenant}
  if user then s[#s + 1] = 'cu:' .. lp(tenant) .. user end
  for k = 1, #pairs, 2 do s[#s + 1] = 'cm:' .. lp(tenant) .. lp(pairs[k]) .. pairs[k + 1] end
  return s
end

local function encode_list(list)
  local out = {}
  for _, s in ipairs(list) do out[#out + 1] = lp(s) end
  return table.concat(out)
end

-- A tenant's conversation sequence counter lives exactly as long as its index of all conversations.
local function sync_counter(tenant)
  local n = P .. 'cn:' .. tenant
  local ttl = redis.call('PTTL', P .. 'ca:' .. tenant)
  if ttl == -2 then redis.call('DEL', n)
  elseif ttl == -1 then redis.call('PERSIST', n)
  else redis.call('PEXPIRE', n, ttl) end
end

-- Appends items to a conversation whose hash is ckey: ids[k] for the cx index ('' for none),
-- bodies[k] the member after its position (see "Conversation items" in redis.ts); e is its expiry field.
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

-- A finished turn's usage added to its conversation's totals (both finish scripts: ARGV[2] = now,
-- ARGV[5..8] = input, output, total tokens and cost); gc is the conversation's cost so far.
local function add_turn_totals(ckey, gc)
  redis.call('HINCRBY', ckey, 'gi', ARGV[5])
  redis.call('HINCRBY', ckey, 'go', ARGV[6])
  redis.call('HINCRBY', ckey, 'gt', ARGV[7])
  redis.call('HINCRBY', ckey, 'gn', 1)
  -- Doubles, like the other backends' arithmetic; %.17g reads back as the same double.
  local cost = tonumber(gc or '0') + tonumber(ARGV[8])
  redis.call('HSET', ckey, 'gc', string.format('%.17g', cost), 'ua', ARGV[2])
end

-- Positions of an item id in a conversation ("3,9"): the first and the last.
local function positions(v)
  local first = string.match(v, '^[^,]+')
  local last = string.match(v, '[^,]+$')
  return first, last
end

-- What a conversation read returns, decoded by decodeConversation in redis.ts.
local CONVERSATION_FIELDS = {'m', 'md', 'n', 'ua', 'gi', 'go', 'gt', 'gc', 'gn'}
local function conversation_fields(ckey)
  return redis.call('HMGET', ckey, unpack(CONVERSATION_FIELDS))
end

-- Creates a conversation (the id must be free). c: a table of its fields; ids/jsons: its items (as for append).
local function create_conversation(ckey, xkey, c, ids, jsons)
  local seq = redis.call('INCR', P .. 'cn:' .. c.tenant)
  local q = string.format('%016d', seq) .. c.id
  local sfx = suffixes(c.tenant, c.user, md_pairs(c.md))
  local ix = encode_list(sfx)
  redis.call('HSET', ckey, 'm', c.m, 'md', c.md, 'n', 0, 'q', q, 't', c.created, 'ix', ix, 'tn', c.tenant,
    'ua', c.updated, 'gi', c.gi, 'go', c.go, 'gt', c.gt, 'gc', c.gc, 'gn', c.gn)
  if c.user then redis.call('HSET', ckey, 'u', c.user) end
  local exp = expiry_ms(c.e)
  if exp then redis.call('HSET', ckey, 'e', c.e) end
  for _, s in ipairs(sfx) do index_add(P .. s, c.created, q, exp, 0) end
  sync_counter(c.tenant)
  if exp then
    local xm = 'c' .. lp(q) .. ix
    redis.call('HSET', ckey, 'xm', xm)
    index_add(xkey, c.e, xm, exp, INDEX_GRACE_MS)
  end
  append(c.id, ckey, ids, jsons, c.e)
  if c.count and c.count ~= '' then redis.call('HSET', ckey, 'n', c.count) end
  if exp then redis.call('PEXPIREAT', ckey, exp) end
end

-- Conversation fields from ARGV[i..i+14], in the order redis.ts writes them.
local function conversation_args(i)
  local c = {
    id = ARGV[i], tenant = ARGV[i + 1], m = ARGV[i + 2], md = ARGV[i + 3], created = ARGV[i + 4],
    user = false, e = ARGV[i + 7], updated = ARGV[i + 8], gi = ARGV[i + 9], go = ARGV[i + 10],
    gt = ARGV[i + 11], gc = ARGV[i + 12], gn = ARGV[i + 13], count = ARGV[i + 14],
  }
  if ARGV[i + 5] == '1' then c.user = ARGV[i + 6] end
  return c
end

-- Removes a conversation and its index entries. h = HMGET of q, e, ix, xm, tn.
local function delete_conversation(id, h)
  for _, s in ipairs(unlp(h[3])) do redis.call('ZREM', P .. s, h[1]) end
  if h[4] then redis.call('ZREM', P .. 'x', h[4]) end
  redis.call('DEL', P .. 'c:' .. id, P .. 'ci:' .. id, P .. 'cx:' .. id)
  if h[5] and redis.call('EXISTS', P .. 'ca:' .. h[5]) == 0 then redis.call('DEL', P .. 'cn:' .. h[5]) end
end
local function conversation_for_delete(id)
  return redis.call('HMGET', P .. 'c:' .. id, 'q', 'e', 'ix', 'xm', 'tn')
end

-- The change token (RedisStore.changeToken): a fresh value, never one seen before, whenever a
-- stored response is deleted or changes status. Set in the script that makes the change, so no
-- reader can see the change under the old token and then cache what it loaded under the new one.
local function changed(token) redis.call('SET', P .. 'v', token) end

-- ---------- response records (the layout is described in redis.ts, "Response records") ----------
-- A field is '-' (null), '<n>:<n bytes>', or '!<n>:<bytes><m>:<json>' for a string that is not
-- well-formed UTF-16: its UTF-8 form (what keys are made of, so what scripts use) and then its
-- exact JSON form, which only Node reads.

-- The field at byte i: its value (false for null) and the index after it.
local function field(s, i)
  local c = string.byte(s, i)
  if c == 45 then return false, i + 1 end
  local escaped = c == 33
  if escaped then i = i + 1 end
  local colon = string.find(s, ':', i, true)
  local last = colon + tonumber(string.sub(s, i, colon - 1))
  local value = string.sub(s, colon + 1, last)
  i = last + 1
  if escaped then
    colon = string.find(s, ':', i, true)
    i = colon + tonumber(string.sub(s, i, colon - 1)) + 1
  end
  return value, i
end

-- The index after the field at byte i, without copying it.
local function skip(s, i)
  local c = string.byte(s, i)
  if c == 45 then return i + 1 end
  if c == 33 then return skip(s, skip(s, i + 1)) end
  local colon = string.find(s, ':', i, true)
  return colon + tonumber(string.sub(s, i, colon - 1)) + 1
end

local function skip_n(s, i, n)
  for _ = 1, n do i = skip(s, i) end
  return i
end

-- A record's head: status, e, up, uc, tenant, user, own id, model, createdAt, params; then the
-- input items. Returns the index of the input item count.
local RECORD_HEAD = 10
-- The index where the result (completedAt, usage, error, incomplete details, output) starts.
local function result_start(s)
  local n, i = field(s, skip_n(s, 1, RECORD_HEAD))
  return skip_n(s, i, 2 * tonumber(n))
end

-- Items at index i of s (a count, then id and data per item), as conversation members: appends
-- the ids (for the cx index; '' for none) and the member bodies (id field + data) to the lists.
local function record_items(s, i, ids, bodies)
  local n
  n, i = field(s, i)
  for _ = 1, tonumber(n) do
    local id, j = field(s, i)
    local data, k = field(s, j)
    ids[#ids + 1] = id or ''
    bodies[#bodies + 1] = string.sub(s, i, j - 1) .. data
    i = k
  end
  return i
end

-- The response at key: its record string, or {'v1'} for a hash written before, or false.
local function response_record(key)
  local s = redis.pcall('GET', key)
  if type(s) == 'table' then return {'v1'} end
  return s
end

-- A response's expiry field (false or nil when none), whatever its layout; then the record as
-- response_record read it.
local function response_expiry(key)
  local s = response_record(key)
  if type(s) == 'table' then return redis.call('HGET', key, 'e'), s end
  if not s then return nil, s end
  return (field(s, skip(s, 1))), s
end

-- ---------- conversation members that point at a turn's items ----------
-- A finished turn's items are appended to its conversation as pointers into its record:
-- '<position>:>' .. lp(response id) .. k, item k (from 0: inputs, then outputs) of that record. '>'
-- starts no id field and no JSON. A record pointed at is kept (its TTL) as long as the conversation,
-- and before it is deleted its items are copied into the members that point at them: only the
-- members of its own conversation can (forks and imports copy).

-- Every item of a record as a member body (id field + data), inputs then outputs, with the ids.
local function record_bodies(s)
  local ids, bodies = {}, {}
  record_items(s, skip_n(s, 1, RECORD_HEAD), ids, bodies)
  record_items(s, skip_n(s, result_start(s), 4), ids, bodies)
  return ids, bodies
end

local function pointer(id, k) return '>' .. lp(id) .. k end

-- The member with a pointer replaced by the item itself; cache holds records' bodies for one run.
-- A pointer whose record is gone is returned as it is (redis.ts refuses it: never a silent gap).
local function resolve(member, cache)
  local colon = string.find(member, ':', 1, true)
  if string.byte(member, colon + 1) ~= 62 then return member end
  local c = string.find(member, ':', colon + 2, true)
  local n = tonumber(string.sub(member, colon + 2, c - 1))
  local id = string.sub(member, c + 1, c + n)
  local bodies = cache[id]
  if bodies == nil then
    local s = response_record(P .. 'r:' .. id)
    bodies = false
    if type(s) == 'string' then
      local _
      _, bodies = record_bodies(s)
    end
    cache[id] = bodies
  end
  local body = bodies and bodies[tonumber(string.sub(member, c + n + 1)) + 1]
  if not body then return member end
  return string.sub(member, 1, colon) .. body
end

local function resolve_all(members)
  local cache = {}
  for i = 1, #members do members[i] = resolve(members[i], cache) end
  return members
end

-- Before the record s of response id goes: the members of its conversation pointing at its items
-- get the items themselves (found through the conversation's item-id index).
local function keep_conversation_items(id, s)
  local _, i = field(s, 1)
  local _, j = field(s, i)
  local conv = field(s, skip(s, j))
  if not conv then return end
  local ci = P .. 'ci:' .. conv
  if redis.call('EXISTS', ci) == 0 then return end
  local cx = P .. 'cx:' .. conv
  local ids, bodies = record_bodies(s)
  for k = 1, #ids do
    local v = ids[k] ~= '' and redis.call('HGET', cx, ids[k])
    if v then
      local wanted = pointer(id, k - 1)
      for pos in string.gmatch(v, '[^,]+') do
        local m = redis.call('ZRANGEBYSCORE', ci, pos, pos)[1]
        if m == pos .. ':' .. wanted then
          redis.call('ZREMRANGEBYSCORE', ci, pos, pos)
          redis.call('ZADD', ci, pos, pos .. ':' .. bodies[k])
        end
      end
    end
  end
end

-- Removes a response and its index entries; returns 1 when it existed.
local function delete_response(id)
  local key = P .. 'r:' .. id
  local ru = ''
  local s = response_record(key)
  if type(s) == 'table' then
    ru = redis.call('HGET', key, 'ru') or ''
  elseif s then
    local tenant, i = field(s, skip_n(s, 1, 4))
    local user = field(s, i)
    if user then ru = 'ru:' .. lp(tenant) .. user end
    keep_conversation_items(id, s)
  end
  redis.call('ZREM', P .. 'x', 'r' .. lp(id) .. lp(ru))
  if ru ~= '' then redis.call('ZREM', P .. ru, id) end
  redis.call('ZREM', P .. 'u', id)
  return redis.call('DEL', key)
end
`;

// ---------- responses ----------

/**
 * KEYS[1] = r:<id>, KEYS[2] = x, KEYS[3] = u.  ARGV: P, expiresAt ('' = none), id, status,
 * createdAt, user index ('' = none), the response record. Returns 1, or 0 when the id exists.
 * Also writes imported (already finished) responses.
 */
const BEGIN_TURN = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local e, id, status, created, ru = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
redis.call('SET', KEYS[1], ARGV[7])
local exp = expiry_ms(e)
local unfinished = status == 'in_progress' or status == 'queued'
local physical = exp
if exp then
  if unfinished then physical = math.max(exp, server_ms() + IN_PROGRESS_GRACE_MS) end
  redis.call('PEXPIREAT', KEYS[1], physical)
  index_add(KEYS[2], e, 'r' .. lp(id) .. lp(ru), exp, INDEX_GRACE_MS)
end
if ru ~= '' then index_add(P .. ru, created, id, exp, 0) end
if unfinished then index_add(KEYS[3], created, id, physical, 0) end
return 1
`;

/**
 * KEYS[1] = r:<id>.  ARGV: P, now (s), id, status, input/output/total tokens, cost, the new
 * result (completedAt, usage, error, incomplete details, output items, as record fields).
 * Returns 'ok', 'missing', 'v1' (a hash written before: FINISH_TURN_V1 finishes it), or the
 * status the response already has. A completed or incomplete turn of a live conversation is
 * appended to it (input, then output) and added to its usage totals, in the same script.
 */
const FINISH_TURN = `
local key = KEYS[1]
local now = tonumber(ARGV[2])
local s = response_record(key)
if type(s) == 'table' then return 'v1' end
if not s then return 'missing' end
local status, i = field(s, 1)
if status ~= 'in_progress' and status ~= 'queued' then return status end
local e, j = field(s, i)
local conv = field(s, skip(s, j))
local result = ARGV[9]
redis.call('SET', key, lp(ARGV[4]) .. string.sub(s, i, result_start(s) - 1) .. result)
redis.call('ZREM', P .. 'u', ARGV[3])
if conv and (ARGV[4] == 'completed' or ARGV[4] == 'incomplete') then
  local ckey = P .. 'c:' .. conv
  local c = redis.call('HMGET', ckey, 'n', 'e', 'gc')
  if c[1] and live(c[2], now) then
    local ids, bodies = {}, {}
    record_items(s, skip_n(s, 1, RECORD_HEAD), ids, bodies)
    record_items(result, skip_n(result, 1, 4), ids, bodies)
    -- Pointers into this record (an item without an id, which the index cannot find, is copied).
    for k = 1, #ids do
      if ids[k] ~= '' then bodies[k] = pointer(ARGV[3], k - 1) end
    end
    append(conv, ckey, ids, bodies, c[2])
    add_turn_totals(ckey, c[3])
    -- The record lasts as long as the conversation pointing at it (it stays hidden from its own
    -- expiry on; pruning copies its items into the conversation before deleting it).
    local conv_exp = expiry_ms(c[2])
    if not conv_exp then e = nil
    elseif expiry_ms(e) and conv_exp > expiry_ms(e) then e = c[2] end
  end
end
local exp = expiry_ms(e)
if exp then redis.call('PEXPIREAT', key, exp) end
return 'ok'
`;

/**
 * KEYS[1] = r:<id>.  ARGV: P, status, the output so far (its count and items, as record fields).
 * Replaces an unfinished turn's status and output; returns 1, 0 (changing nothing) when the turn
 * is unknown or finished, or 'v1' for a hash written before (SAVE_PROGRESS_V1 handles it).
 */
const SAVE_PROGRESS = `
local key = KEYS[1]
local s = response_record(key)
if type(s) == 'table' then return 'v1' end
if not s then return 0 end
local status, i = field(s, 1)
if status ~= 'in_progress' and status ~= 'queued' then return 0 end
local output = skip_n(s, result_start(s), 4)
redis.call('SET', key, lp(ARGV[2]) .. string.sub(s, i, output - 1) .. ARGV[3], 'KEEPTTL')
return 1
`;

/**
 * A response hash written before the record layout (FINISH_TURN answered 'v1').
 * KEYS[1] = r:<id>.  ARGV: P, now (s), id, status, input/output/total tokens, cost, then fields to
 * set (s, fc, fu, fe, fi, no, ko, o0..). Returns 'ok', 'missing', or the status the response
 * already has. A completed or incomplete turn of a live conversation is appended to it (input,
 * then output) and added to its usage totals, in the same script.
 */
const FINISH_TURN_V1 = `
local key = KEYS[1]
local now = tonumber(ARGV[2])
local status = redis.call('HGET', key, 's')
if not status then return 'missing' end
if status ~= 'in_progress' and status ~= 'queued' then return status end
local old = tonumber(redis.call('HGET', key, 'no') or '0')
for k = 0, old - 1 do redis.call('HDEL', key, 'o' .. k) end
hset_from(key, 9)
redis.call('ZREM', P .. 'u', ARGV[3])
if ARGV[4] == 'completed' or ARGV[4] == 'incomplete' then
  local conv = redis.call('HGET', key, 'uc')
  if conv then
    local ckey = P .. 'c:' .. conv
    local c = redis.call('HMGET', ckey, 'n', 'e', 'gc')
    if c[1] and live(c[2], now) then
      local h = redis.call('HMGET', key, 'ki', 'ko', 'ni', 'no')
      local ids = unlp(h[1])
      for _, id in ipairs(unlp(h[2])) do ids[#ids + 1] = id end
      local jsons = {}
      for k = 0, tonumber(h[3]) - 1 do jsons[#jsons + 1] = redis.call('HGET', key, 'i' .. k) end
      for k = 0, tonumber(h[4]) - 1 do jsons[#jsons + 1] = redis.call('HGET', key, 'o' .. k) end
      append(conv, ckey, ids, jsons, c[2])
      add_turn_totals(ckey, c[3])
    end
  end
end
local exp = expiry_ms(redis.call('HGET', key, 'e'))
if exp then redis.call('PEXPIREAT', key, exp) end
return 'ok'
`;

/**
 * A response hash written before the record layout (SAVE_PROGRESS answered 'v1').
 * KEYS[1] = r:<id>.  ARGV: P, then fields to set (s, no, ko, o0..). Replaces an unfinished turn's
 * status and output; returns 1, or 0 (changing nothing) when the turn is unknown or finished.
 */
const SAVE_PROGRESS_V1 = `
local key = KEYS[1]
local status = redis.call('HGET', key, 's')
if status ~= 'in_progress' and status ~= 'queued' then return 0 end
local old = tonumber(redis.call('HGET', key, 'no') or '0')
for k = 0, old - 1 do redis.call('HDEL', key, 'o' .. k) end
hset_from(key, 2)
return 1
`;

/**
 * KEYS[1] = u.  ARGV: P, before (s), the interrupted error (JSON), batch size, a fresh change
 * token. Marks unfinished turns created before \`before\` as failed; returns {failed, examined}.
 */
const FAIL_STALE_TURNS = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
local failed = 0
for _, id in ipairs(ids) do
  local key = P .. 'r:' .. id
  local s = response_record(key)
  if type(s) == 'table' then
    local h = redis.call('HMGET', key, 's', 'e')
    if h[1] == 'in_progress' or h[1] == 'queued' then
      redis.call('HSET', key, 's', 'failed', 'fe', ARGV[3])
      local exp = expiry_ms(h[2])
      if exp then redis.call('PEXPIREAT', key, exp) end
      failed = failed + 1
    end
  elseif s then
    local status, i = field(s, 1)
    if status == 'in_progress' or status == 'queued' then
      -- The error is the third result field: completedAt and usage stay, and all after it.
      local at = skip_n(s, result_start(s), 2)
      redis.call('SET', key, lp('failed') .. string.sub(s, i, at - 1) .. lp(ARGV[3]) .. string.sub(s, skip(s, at)))
      local exp = expiry_ms(field(s, i))
      if exp then redis.call('PEXPIREAT', key, exp) end
      failed = failed + 1
    end
  end
  redis.call('ZREM', KEYS[1], id)
end
if failed > 0 then changed(ARGV[5]) end
return {failed, #ids}
`;

/**
 * KEYS[1] = r:<id>.  ARGV: P, now (s), max depth. Walks parent links server-side and returns
 * { stoppedAt, { record, record, ... } }, tip first, each a record string (or, written before,
 * a hash as a flat field/value list). stoppedAt is false when the walk reached a root, else the
 * id of the missing or expired ancestor.
 */
const LOAD_CHAIN = `
local now = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local key = KEYS[1]
local id = false
local chain = {}
while true do
  local h = response_record(key)
  if not h then break end
  local e, up = nil, nil
  if type(h) == 'table' then
    h = redis.call('HGETALL', key)
    for i = 1, #h, 2 do
      local f = h[i]
      if f == 'e' then e = h[i + 1] elseif f == 'up' then up = h[i + 1] end
    end
  else
    local i
    e, i = field(h, skip(h, 1))
    up = field(h, i)
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

/** KEYS[1] = r:<id>.  ARGV: P, id, a fresh change token. Returns 1 when the response existed. */
const DELETE_RESPONSE = `
local deleted = delete_response(ARGV[2])
if deleted == 1 then changed(ARGV[3]) end
return deleted
`;

/**
 * KEYS[1] = v.  ARGV: P, a fresh token. The change token, created with the fresh value when it is
 * missing (never written yet, or lost to a flush): a lost token never comes back as an old value.
 */
const CHANGE_TOKEN = `
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[2])
return ARGV[2]
`;

/**
 * KEYS = r:<id> keys.  ARGV: P, 'head' or 'full'. Per key: its record (with 'head', only up to
 * and including createdAt), or for a hash written before HMGET m, e ('head') or HGETALL ('full'),
 * or false when it is gone. For export, which reads responses by the batch.
 */
const READ_RESPONSES = `
local out = {}
for n, key in ipairs(KEYS) do
  local s = response_record(key)
  if type(s) == 'table' then
    if ARGV[2] == 'head' then s = redis.call('HMGET', key, 'm', 'e') else s = redis.call('HGETALL', key) end
  elseif s and ARGV[2] == 'head' then
    s = string.sub(s, 1, skip_n(s, 1, RECORD_HEAD - 1) - 1)
  end
  out[n] = s
end
return out
`;

/**
 * KEYS[1] = x.  ARGV: P, now (s), batch size, a fresh change token. Removes what expired by \`now\`;
 * returns how many records.
 */
const PRUNE = `
local now = tonumber(ARGV[2])
local responses, conversations = 0, 0
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(members) do
  local parts = unlp(m, 2)
  if string.sub(m, 1, 1) == 'r' then
    local id, ru = parts[1], parts[2] or ''
    local key = P .. 'r:' .. id
    if ru ~= '' then redis.call('ZREM', P .. ru, id) end
    redis.call('ZREM', P .. 'u', id)
    -- A response recreated under the same id without an expiry is not this record.
    local e, s = response_expiry(key)
    if e and not live(e, now) then
      if type(s) == 'string' then keep_conversation_items(id, s) end
      responses = responses + redis.call('DEL', key)
    end
  else
    local q = parts[1]
    local id = string.sub(q, 17)
    for i = 2, #parts do redis.call('ZREM', P .. parts[i], q) end
    local c = redis.call('HMGET', P .. 'c:' .. id, 'q', 'e', 'tn')
    if (not c[1]) or (c[1] == q and not live(c[2], now)) then
      conversations = conversations + redis.call('DEL', P .. 'c:' .. id, P .. 'ci:' .. id, P .. 'cx:' .. id)
    end
    local tenant = string.match(parts[2] or '', '^ca:(.*)$')
    if tenant and redis.call('EXISTS', P .. 'ca:' .. tenant) == 0 then redis.call('DEL', P .. 'cn:' .. tenant) end
  end
  redis.call('ZREM', KEYS[1], m)
end
if responses + conversations > 0 then changed(ARGV[4]) end
return #members
`;

// ---------- conversations ----------

/**
 * KEYS[1] = c:<id>, KEYS[2] = x.  ARGV: P, then the conversation's fields (see conversation_args:
 * id, tenant, m, md, createdAt, hasUser, user, expiresAt, updatedAt, usage x5, item count or ''),
 * then (item id, item json) pairs. Returns 1, or 0 when the id exists.
 */
const CREATE_CONVERSATION = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ids, jsons = {}, {}
for k = 17, #ARGV, 2 do
  ids[#ids + 1] = ARGV[k]
  jsons[#jsons + 1] = ARGV[k + 1]
end
create_conversation(KEYS[1], KEYS[2], conversation_args(2), ids, jsons)
return 1
`;

/**
 * KEYS[1] = c:<id>, KEYS[2] = x.  ARGV: P, now, mode, then for 'replace' the metadata JSON, for
 * 'merge' (encoded key, set? '1'/'0', encoded value) triples. Updates the metadata and its index
 * entries; returns the conversation fields, or false when it is unknown.
 */
const UPDATE_METADATA = `
local ckey = KEYS[1]
local h = redis.call('HMGET', ckey, 'q', 'e', 'ix', 'xm', 't', 'u', 'tn', 'md')
if not h[1] or not live(h[2], tonumber(ARGV[2])) then return false end
local q, e, t, tenant = h[1], h[2], h[5], h[7]
local md
if ARGV[3] == 'replace' then
  md = ARGV[4]
else
  local pairs = md_pairs(h[8])
  for i = 4, #ARGV, 3 do
    local key, set, value = ARGV[i], ARGV[i + 1] == '1', ARGV[i + 2]
    local found = nil
    for k = 1, #pairs, 2 do
      if pairs[k] == key then found = k break end
    end
    if found and set then pairs[found + 1] = value
    elseif found then
      table.remove(pairs, found)
      table.remove(pairs, found)
    elseif set then
      pairs[#pairs + 1] = key
      pairs[#pairs + 1] = value
    end
  end
  md = md_json(pairs)
end
for _, s in ipairs(unlp(h[3])) do redis.call('ZREM', P .. s, q) end
local sfx = suffixes(tenant, h[6], md_pairs(md))
local ix = encode_list(sfx)
local exp = expiry_ms(e)
for _, s in ipairs(sfx) do index_add(P .. s, t, q, exp, 0) end
sync_counter(tenant)
redis.call('HSET', ckey, 'md', md, 'ix', ix, 'ua', ARGV[2])
if h[4] then
  redis.call('ZREM', KEYS[2], h[4])
  local xm = 'c' .. lp(q) .. ix
  redis.call('HSET', ckey, 'xm', xm)
  index_add(KEYS[2], e, xm, exp, INDEX_GRACE_MS)
end
return conversation_fields(ckey)
`;

/**
 * KEYS[1] = c:<id>.  ARGV: P, now, id, a fresh change token. Removes every key and index entry
 * (its items leave it: the token moves); 1 when it was live.
 */
const DELETE_CONVERSATION = `
local h = conversation_for_delete(ARGV[3])
if not h[1] then return 0 end
delete_conversation(ARGV[3], h)
changed(ARGV[4])
if live(h[2], tonumber(ARGV[2])) then return 1 end
return 0
`;

/** KEYS[1] = c:<id>.  ARGV: P, now, id, then (item id, json) pairs. Returns the fields or false. */
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
redis.call('HSET', ckey, 'ua', ARGV[2])
return conversation_fields(ckey)
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
resolve_all(items)
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
if not found[1] then return false end
return resolve(found[1], {})
`;

/**
 * KEYS[1] = c:<id>.  ARGV: P, now, id, item id, a fresh change token. Removes the first item with
 * that id (the token moves); 1 when found.
 */
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
changed(ARGV[5])
return 1
`;

/**
 * KEYS[1] = c:<id>.  ARGV: P, now, id, position. Returns {0} when the conversation is unknown,
 * else {1, n (its item count), members from that position on...}.
 */
const LOAD_ITEMS_FROM = `
local ckey = KEYS[1]
local h = redis.call('HMGET', ckey, 'n', 'e')
if not h[1] or not live(h[2], tonumber(ARGV[2])) then return {0} end
local items = resolve_all(redis.call('ZRANGEBYSCORE', P .. 'ci:' .. ARGV[3], ARGV[4], '+inf'))
table.insert(items, 1, h[1])
table.insert(items, 1, 1)
return items
`;

/**
 * KEYS[1] = c:<source>, KEYS[2] = c:<target>, KEYS[3] = x.  ARGV: P, now, source id, item id, then
 * the target's fields as for CREATE_CONVERSATION. Copies the source's items up to and including the
 * item into a new conversation. Returns {'ok', fields...}, {'missing'} or {'conflict'}.
 */
const FORK_CONVERSATION = `
local source = ARGV[3]
local e = redis.call('HGET', KEYS[1], 'e')
if redis.call('EXISTS', KEYS[1]) == 0 or not live(e, tonumber(ARGV[2])) then return {'missing'} end
local cx = P .. 'cx:' .. source
local v = redis.call('HGET', cx, ARGV[4])
if not v then return {'missing'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'conflict'} end
local first = positions(v)
local idAt = {}
local all = redis.call('HGETALL', cx)
for i = 1, #all, 2 do
  for pos in string.gmatch(all[i + 1], '[^,]+') do idAt[pos] = all[i] end
end
local ids, jsons = {}, {}
-- Copies (the fork's members may point only at its own turns: it has none).
for _, member in ipairs(resolve_all(redis.call('ZRANGEBYSCORE', P .. 'ci:' .. source, '-inf', first))) do
  local colon = string.find(member, ':', 1, true)
  ids[#ids + 1] = idAt[string.sub(member, 1, colon - 1)] or ''
  jsons[#jsons + 1] = string.sub(member, colon + 1)
end
create_conversation(KEYS[2], KEYS[3], conversation_args(5), ids, jsons)
local fields = conversation_fields(KEYS[2])
table.insert(fields, 1, 'ok')
return fields
`;

/**
 * KEYS[1] = ca:<tenant>.  ARGV: P, now, order, limit, hasAfter, after id, tenant, hasUser, user,
 * hasCreatedAfter, createdAfter, hasCreatedBefore, createdBefore, pair count, encoded pairs...
 * Walks the smallest matching index in order and checks the others; returns the fields of up to
 * limit + 1 conversations, flat. Entries whose conversation Redis already dropped are removed.
 */
const LIST_CONVERSATIONS = `
local now = tonumber(ARGV[2])
local desc = ARGV[3] == 'desc'
local want = tonumber(ARGV[4]) + 1
local tenant = ARGV[7]
local low = nil
local high = nil
if ARGV[10] == '1' then low = tonumber(ARGV[11]) end
if ARGV[12] == '1' then high = tonumber(ARGV[13]) end
local sfx = {}
if ARGV[8] == '1' then sfx[1] = 'cu:' .. lp(tenant) .. ARGV[9] end
local np = tonumber(ARGV[14])
for k = 15, 14 + 2 * np, 2 do sfx[#sfx + 1] = 'cm:' .. lp(tenant) .. lp(ARGV[k]) .. ARGV[k + 1] end
if #sfx == 0 then sfx[1] = 'ca:' .. tenant end
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
local function in_range(t)
  return (not low or t >= low) and (not high or t < high)
end
local start = 0
if desc and high then start = redis.call('ZCOUNT', drive, high, '+inf') end
if not desc and low then start = redis.call('ZCOUNT', drive, '-inf', '(' .. low) end
if ARGV[5] == '1' then
  local a = redis.call('HMGET', P .. 'c:' .. ARGV[6], 'q', 'e', 't', 'tn')
  if not a[1] or a[4] ~= tenant or not live(a[2], now) or not in_range(tonumber(a[3])) or not matches(a[1]) then
    return {}
  end
  local rank
  if desc then rank = redis.call('ZREVRANK', drive, a[1]) else rank = redis.call('ZRANK', drive, a[1]) end
  if not rank then return {} end
  start = rank + 1
end
local out, stale, found = {}, {}, 0
local batch = math.max(want, 100)
local done = false
while found < want and not done do
  local qs
  if desc then
    qs = redis.call('ZREVRANGE', drive, start, start + batch - 1, 'WITHSCORES')
  else
    qs = redis.call('ZRANGE', drive, start, start + batch - 1, 'WITHSCORES')
  end
  if #qs == 0 then break end
  for i = 1, #qs, 2 do
    local q, t = qs[i], tonumber(qs[i + 1])
    if (desc and low and t < low) or (not desc and high and t >= high) then
      done = true
      break
    end
    local ckey = P .. 'c:' .. string.sub(q, 17)
    local h = redis.call('HMGET', ckey, 'q', 'e')
    if not h[1] or h[1] ~= q then
      stale[#stale + 1] = q
    elseif live(h[2], now) and matches(q) then
      for _, f in ipairs(conversation_fields(ckey)) do out[#out + 1] = f end
      found = found + 1
      if found >= want then break end
    end
  end
  start = start + batch
end
for _, q in ipairs(stale) do redis.call('ZREM', drive, q) end
return out
`;

/**
 * KEYS[1] = ru:<tenant><user>, KEYS[2] = cu:<tenant><user>.  ARGV: P, batch size, a fresh change
 * token. Deletes up to a batch of the user's responses and conversations; returns {responses,
 * conversations, more}.
 */
const DELETE_USER_DATA = `
local batch = tonumber(ARGV[2])
local responses, conversations = 0, 0
local ids = redis.call('ZRANGE', KEYS[1], 0, batch - 1)
for _, id in ipairs(ids) do
  responses = responses + delete_response(id)
  redis.call('ZREM', KEYS[1], id)
end
local qs = redis.call('ZRANGE', KEYS[2], 0, batch - 1)
for _, q in ipairs(qs) do
  local id = string.sub(q, 17)
  local h = conversation_for_delete(id)
  if h[1] == q then
    delete_conversation(id, h)
    conversations = conversations + 1
  end
  redis.call('ZREM', KEYS[2], q)
end
if responses + conversations > 0 then changed(ARGV[3]) end
local more = 0
if #ids == batch or #qs == batch then more = 1 end
return {responses, conversations, more}
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
  finishTurnV1: script('finishTurnV1', FINISH_TURN_V1),
  saveProgress: script('saveProgress', SAVE_PROGRESS),
  saveProgressV1: script('saveProgressV1', SAVE_PROGRESS_V1),
  failStaleTurns: script('failStaleTurns', FAIL_STALE_TURNS),
  loadChain: script('loadChain', LOAD_CHAIN),
  deleteResponse: script('deleteResponse', DELETE_RESPONSE),
  changeToken: script('changeToken', CHANGE_TOKEN),
  readResponses: script('readResponses', READ_RESPONSES),
  prune: script('prune', PRUNE),
  createConversation: script('createConversation', CREATE_CONVERSATION),
  updateMetadata: script('updateMetadata', UPDATE_METADATA),
  deleteConversation: script('deleteConversation', DELETE_CONVERSATION),
  appendItems: script('appendItems', APPEND_ITEMS),
  listItems: script('listItems', LIST_ITEMS),
  loadItemsFrom: script('loadItemsFrom', LOAD_ITEMS_FROM),
  getItem: script('getItem', GET_ITEM),
  deleteItem: script('deleteItem', DELETE_ITEM),
  forkConversation: script('forkConversation', FORK_CONVERSATION),
  listConversations: script('listConversations', LIST_CONVERSATIONS),
  deleteUserData: script('deleteUserData', DELETE_USER_DATA),
  renewLease: script('renewLease', RENEW_LEASE),
  releaseLease: script('releaseLease', RELEASE_LEASE),
} as const;
