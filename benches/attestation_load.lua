-- wrk script: one new ATTESTATION per request, round-robin over the keys in PALISADE_KEYS
-- (comma-separated 0x-pubkeys), each with a strictly increasing source/target so that every
-- request is a fresh check-and-record (no repeats, no refusals).
local keys = {}
for k in string.gmatch(os.getenv("PALISADE_KEYS") or "", "[^,]+") do keys[#keys + 1] = k end
local gvr = "0x" .. string.rep("42", 32)
local zero = "0x" .. string.rep("00", 32)
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

function init(args)
  counter = 0
end

function request()
  counter = counter + 1
  local key = keys[(counter % #keys) + 1]
  -- disjoint epoch ranges per wrk thread, increasing per key
  local target = thread_id * 100000000 + counter + 1
  local body = string.format(
    '{"type":"ATTESTATION","fork_info":{"fork":{"previous_version":"0x00000000","current_version":"0x00000000","epoch":"0"},"genesis_validators_root":"%s"},"attestation":{"slot":"%d","index":"0","beacon_block_root":"%s","source":{"epoch":"%d","root":"%s"},"target":{"epoch":"%d","root":"%s"}}}',
    gvr, target * 32, zero, target - 1, zero, target, zero)
  return wrk.format("POST", "/api/v1/eth2/sign/" .. key, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
