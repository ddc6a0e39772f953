-- wrk script for benches/load.sh: every request is a new, realistic
-- "Closed Won" deal event for the bundled workflows (all eight required
-- fields present, so "Sales to Delivery" proceeds and plans its assign,
-- kickoff task, notification and welcome email draft).
--
-- Each event has its own id and its own record id, so every request is a
-- real durable insert (a new audit row, record, handoff and outbox rows),
-- never a dedupe hit. wrk runs one Lua state per thread: `setup` numbers
-- the threads, and the run's name (the first script argument) keeps ids of
-- one run apart from another's in the same database.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local counter = 0
local prefix = "load"

function init(args)
  prefix = (args[1] or "load") .. "-t" .. tostring(tid)
end

local headers = { ["Content-Type"] = "application/json" }

local template = [[{"id":"evt-%s","object":"deal","record_id":"D-%s",]]
  .. [["occurred_at":"2026-11-20T15:04:05Z",]]
  .. [["record":{"name":"Deal %s","stage":"Closed Won","owner":"sam@example.com",]]
  .. [["amount":12000,"segment":"mid","buyer_goals":"Cut onboarding time in half",]]
  .. [["main_contact":"jo@acme.example","signed_scope":"https://docs.example/acme-sow",]]
  .. [["start_date":"2026-12-07","promised_deliverables":["Onboarding playbook","Two training sessions"],]]
  .. [["pricing_exceptions":"None","risk_notes":"Busy December",]]
  .. [["kickoff_preference":"Tuesday mornings","custom_scope":false},]]
  .. [["previous":{"stage":"Proposal"}}]]

function request()
  counter = counter + 1
  local id = prefix .. "-" .. tostring(counter)
  return wrk.format("POST", "/hooks/generic", headers, string.format(template, id, id, id))
end
