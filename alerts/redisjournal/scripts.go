package redisjournal

import "github.com/redis/go-redis/v9"

// appendScript is the whole of an append, atomic in Redis: check the
// expected version, allocate the seq, add the event to the stream with ID
// "<seq>-0", store the state and move the alert between the list indexes.
// A reader never sees a seq without its event, and two appends never share
// a seq.
//
// KEYS: 1 seq counter, 2 alert hash, 3 event stream, 4… the list indexes
// the new state belongs to (the alert hash remembers them in field ix, so
// the next append can leave the old ones)
// ARGV: 1 expected version, 2 alert JSON (version already expect+1),
// 3 change JSON (seq 0), 4 index member, 5 stream MAXLEN (0: no trim),
// 6 "1" when replaying the spool
//
// Replies: {"ok", seq}; {"dup", seq} when replaying and the stored alert is
// already exactly this change (its first attempt ran but the reply was
// lost); {"notfound"}; {"exists", json}; {"conflict", json}.
var appendScript = redis.NewScript(`
local ev = tonumber(ARGV[1])
local cur = redis.call('HGET', KEYS[2], 'v')
if not cur then
  if ev ~= 0 then return {'notfound'} end
else
  cur = tonumber(cur)
  if cur ~= ev then
    local j = redis.call('HGET', KEYS[2], 'j')
    if ARGV[6] == '1' and cur == ev + 1 and j == ARGV[2] then
      return {'dup', tonumber(redis.call('HGET', KEYS[2], 's'))}
    end
    if ev == 0 then return {'exists', j} end
    return {'conflict', j}
  end
end
local seq = redis.call('INCR', KEYS[1])
local id = string.format('%d-0', seq)
if ARGV[5] ~= '0' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], id, 'c', ARGV[3])
else
  redis.call('XADD', KEYS[3], id, 'c', ARGV[3])
end
local old = redis.call('HGET', KEYS[2], 'm')
local oldix = redis.call('HGET', KEYS[2], 'ix')
if old and oldix then
  for _, k in ipairs(cjson.decode(oldix)) do redis.call('ZREM', k, old) end
end
local ix = {}
for i = 4, #KEYS do
  redis.call('ZADD', KEYS[i], 0, ARGV[4])
  ix[#ix + 1] = KEYS[i]
end
redis.call('HSET', KEYS[2], 'v', string.format('%d', ev + 1), 'j', ARGV[2], 'm', ARGV[4],
  's', string.format('%d', seq), 'ix', cjson.encode(ix))
return {'ok', seq}
`)

// auditScript appends one audit record with the next audit seq as its
// stream ID. KEYS: 1 audit seq counter, 2 audit stream. ARGV: 1 record JSON.
var auditScript = redis.NewScript(`
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], string.format('%d-0', seq), 'r', ARGV[1])
return seq
`)
