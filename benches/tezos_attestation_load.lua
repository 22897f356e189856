-- wrk script: Tezos attestations (magic 0x13, tag 21) on mainnet, one key per wrk thread
-- (PALISADE_TEZOS_KEYS: comma-separated pkhs), each request at a strictly higher level than
-- the previous one of its thread, so that every request is a fresh watermark check-and-record.
local keys = {}
for k in string.gmatch(os.getenv("PALISADE_TEZOS_KEYS") or "", "[^,]+") do keys[#keys + 1] = k end
local thread_id = 0
local level = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function request()
  level = level + 1
  local key = keys[(thread_id % #keys) + 1]
  local body = string.format('"137a06a770%s150000%08x00000000%s"',
    string.rep("ab", 32), level, string.rep("cd", 32))
  return wrk.format("POST", "/keys/" .. key, {["Content-Type"] = "application/json"}, body)
end
