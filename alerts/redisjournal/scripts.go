package redisjournal

import "github.com/redis/go-redis/v9"

// appendScript is the whole of an append of one or more changes, atomic in
// Redis: for each change in order, check the expected version, allocate the
// seq, add the event to the stream with ID "<seq>-0", store the state and
// move the alert between the list indexes. A reader never sees a seq
// without its event, two appends never share a seq, and the changes of one
// call get consecutive seqs in their order (one round trip, and with
// appendfsync always one fsync, however many changes it holds).
//
// KEYS: 1 seq counter, 2 event stream, then per change: the alert hash and
// the list indexes the new state belongs to (the alert hash remembers them
// in field ix, so the next append can leave the old ones)
// ARGV: 1 stream MAXLEN (0: no trim), 2 "1" when replaying the spool,
// 3 batch token ("" for none; stored in field b of every alert the call
// changes, so the spool replayer can tell that a call whose reply was lost
// did run), then five per change: the number of its indexes, the expected
// version, the alert JSON (version already expect+1), the change JSON
// (seq 0) and the index member
//
// Reply: one entry per change: {"ok", seq}; {"dup", seq} when replaying and
// the stored alert is already exactly this change (its first attempt ran
// but the reply was lost); {"notfound"}; {"exists", json}; {"conflict",
// json}; {"bad"} for a negative expected version. Once a change fails,
// every later change of the call on the same alert fails too, as
// {"conflict", json} with the alert as stored, or {"notfound"}: its
// expected version came from what the failed change would have written.
var appendScript = redis.NewScript(`
local maxlen, replay, token = ARGV[1], ARGV[2], ARGV[3]

local function one(akey, ev, aj, cj, member, first, last)
  if ev < 0 then return {'bad'} end
  local cur = redis.call('HGET', akey, 'v')
  if not cur then
    if ev ~= 0 then return {'notfound'} end
  else
    cur = tonumber(cur)
    if cur ~= ev then
      local j = redis.call('HGET', akey, 'j')
      if replay == '1' and cur == ev + 1 and j == aj then
        return {'dup', tonumber(redis.call('HGET', akey, 's'))}
      end
      if ev == 0 then return {'exists', j} end
      return {'conflict', j}
    end
  end
  local seq = redis.call('INCR', KEYS[1])
  local id = string.format('%d-0', seq)
  if maxlen ~= '0' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, id, 'c', cj)
  else
    redis.call('XADD', KEYS[2], id, 'c', cj)
  end
  local old = redis.call('HGET', akey, 'm')
  local oldix = redis.call('HGET', akey, 'ix')
  if old and oldix then
    for _, k in ipairs(cjson.decode(oldix)) do redis.call('ZREM', k, old) end
  end
  local ix = {}
  for i = first, last do
    redis.call('ZADD', KEYS[i], 0, member)
    ix[#ix + 1] = KEYS[i]
  end
  redis.call('HSET', akey, 'v', string.format('%d', ev + 1), 'j', aj, 'm', member,
    's', string.format('%d', seq), 'ix', cjson.encode(ix))
  if token ~= '' then redis.call('HSET', akey, 'b', token) end
  return {'ok', seq}
end

local out, failed = {}, {}
local k, a = 3, 4
while a <= #ARGV do
  local nix = tonumber(ARGV[a])
  local akey = KEYS[k]
  local r
  if failed[akey] then
    local j = redis.call('HGET', akey, 'j')
    if j then r = {'conflict', j} else r = {'notfound'} end
  else
    r = one(akey, tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], k + 1, k + nix)
    if r[1] ~= 'ok' and r[1] ~= 'dup' then failed[akey] = true end
  end
  out[#out + 1] = r
  k = k + 1 + nix
  a = a + 5
end
return out
`)

// auditScript appends one audit record with the next audit seq as its
// stream ID, once per audit ID: a record whose ID the log holds already is
// not appended again, and its seq is returned. KEYS: 1 audit seq counter,
// 2 audit stream, 3 hash audit ID → seq. ARGV: 1 record JSON, 2 audit ID
// ("" for records without one, which are always appended).
var auditScript = redis.NewScript(`
if ARGV[2] ~= '' then
  local had = redis.call('HGET', KEYS[3], ARGV[2])
  if had then return tonumber(had) end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], string.format('%d-0', seq), 'r', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[3], ARGV[2], seq) end
return seq
`)
