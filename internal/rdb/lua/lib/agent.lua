-- lib/agent.lua: the agent index, a prelude put in front of the scripts that
-- create, finish or drop job records (rdb.load concatenates it).
--
-- Each agent number has a sorted set of its jobs' IDs, scored by the time
-- the job was created, so that an operator can find an agent's jobs. Its key
-- is derived here from the agent number, so it is not among a script's KEYS;
-- it carries the hash tag {rcslaunch:results} of every key the scripts are
-- given, so it is in the same Redis Cluster slot, which Redis allows a script
-- to touch (and so are the job records agent_settle looks at). The
-- placeholders quoted on the first line of code are replaced at load by the
-- key prefixes of rdb/keys.go: the index's, followed by the agent number, and
-- a job record's, followed by the job ID.
-- Entries whose record has expired are dropped by the reader.
--
-- The index lives as long as its jobs' records: kept while any of them is
-- kept forever (not finished, dead-lettered, no JOB_RETENTION), it expires
-- with the last of them once each expires, so that retained successes do not
-- leave their agents' indexes behind.
--
-- Defines agent_add, agent_drop and agent_settle; uses no KEYS or ARGV of
-- its own.
local AGENT, JOB = '$AGENT', '$JOB'
-- agent_add indexes job id under agent number a, created at time t (ms); its
-- record has no TTL, so neither has the index.
local function agent_add(a, id, t)
  if a and a ~= '' then
    redis.call('ZADD', AGENT .. a, t, id)
    redis.call('PERSIST', AGENT .. a)
  end
end
-- agent_settle makes agent number a's index expire with the last of its
-- jobs' records when every one of them expires, dropping the entries of
-- records gone. An index of more than 16 jobs is left as it is (its reader
-- prunes it), so that a finish costs a few commands at most. The caller may
-- name a job whose record's TTL it knows (known, in ms), which is not read.
local function agent_settle(a, known, known_ttl)
  if not a or a == '' then return end
  local k = AGENT .. a
  local ids = redis.call('ZRANGE', k, 0, 16)
  if #ids > 16 then return end
  local last = 0
  for _, id in ipairs(ids) do
    local ttl = id == known and known_ttl or redis.call('PTTL', JOB .. id)
    if ttl == -1 then return end
    if ttl == -2 then
      redis.call('ZREM', k, id)
    elseif ttl > last then
      last = ttl
    end
  end
  if last > 0 then redis.call('PEXPIRE', k, string.format('%d', last)) end
end
-- agent_drop takes job id out of agent number a's index.
local function agent_drop(a, id)
  if a and a ~= '' then
    redis.call('ZREM', AGENT .. a, id)
    agent_settle(a)
  end
end
