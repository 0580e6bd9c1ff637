-- lib/agent.lua: the agent index, a prelude put in front of the scripts that
-- create or drop job records (rdb.load concatenates it).
--
-- Each agent number has a sorted set of its jobs' IDs, scored by the time
-- the job was created, so that an operator can find an agent's jobs. Its key
-- is derived here from the agent number, so it is not among a script's KEYS;
-- it carries the hash tag {rcslaunch:results} of every key the scripts are
-- given, so it is in the same Redis Cluster slot, which Redis allows a script
-- to touch. The placeholder quoted on the first line of code is replaced at
-- load by the key prefix of rdb/keys.go, followed by the agent number.
-- Entries whose record has expired are dropped by the reader.
--
-- Defines agent_add and agent_drop; uses no KEYS or ARGV of its own.
local AGENT = '$AGENT'
-- agent_add indexes job id under agent number a, created at time t (ms).
local function agent_add(a, id, t)
  if a and a ~= '' then redis.call('ZADD', AGENT .. a, t, id) end
end
-- agent_drop takes job id out of agent number a's index.
local function agent_drop(a, id)
  if a and a ~= '' then redis.call('ZREM', AGENT .. a, id) end
end
