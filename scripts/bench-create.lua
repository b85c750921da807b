-- wrk script for scripts/bench-create.sh: POST /api/v1/leads with a distinct body every time.
-- Reads COMPANY, USER_ID and KEY from the environment.

local company = os.getenv("COMPANY")
local user = os.getenv("USER_ID")
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("thread_id", thread_id)
  table.insert(threads, thread)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")

function request()
  counter = counter + 1
  local body = string.format(
    '{"company_id":"%s","user_id":"%s","referrer":"https://bench.example/t%d/%d","metadata":{"n":%d,"thread":%d,"source":"wrk"}}',
    company, user, thread_id, counter, counter, thread_id)
  return wrk.format(nil, "/api/v1/leads", nil, body)
end
