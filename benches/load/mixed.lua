-- wrk script for benches/load.sh's "mix" target: traffic closer to a CRM's
-- own. Most webhook events are a deal's fields changing on its way through
-- the pipeline, and only some close it: here nine events in ten are updates
-- of a deal still in "Proposal" (an amount or a note changes; nothing
-- triggers, the record is saved and the event audited), and every tenth
-- closes that deal as "Closed Won" with all eight required fields, so
-- "Sales to Delivery" proceeds and plans its four actions, as in
-- closed_won.lua.
--
-- Each deal gets its ten events in order from one wrk thread, but over
-- several connections, so they may arrive out of order: the updates carry
-- an earlier `occurred_at` than the close, so a late update never
-- overwrites the closed stage, and each deal proceeds exactly once.
--
-- Every value fits the bundled workflows' declarations ("Proposal" is one
-- of deal.stage's values), so no event takes the unknown-value path:
-- benches/load.sh fails if any event was stored with a field error.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local counter = 0
local prefix = "mix"

function init(args)
  prefix = (args[1] or "mix") .. "-t" .. tostring(tid)
end

local headers = { ["Content-Type"] = "application/json" }

local update = [[{"id":"evt-%s","object":"deal","record_id":"D-%s",]]
  .. [["occurred_at":"2026-11-20T15:00:%02dZ",]]
  .. [["record":{"name":"Deal %s","stage":"Proposal","owner":"sam@example.com",]]
  .. [["amount":%d,"segment":"mid","risk_notes":"Update %d"},]]
  .. [["previous":{"stage":"Proposal"}}]]

local close = [[{"id":"evt-%s","object":"deal","record_id":"D-%s",]]
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
  local deal = prefix .. "-" .. tostring(math.floor(counter / 10))
  local id = prefix .. "-" .. tostring(counter)
  local step = counter % 10
  local body
  if step == 9 then
    body = string.format(close, id, deal, deal)
  else
    body = string.format(update, id, deal, step, deal, 10000 + step * 100, step)
  end
  return wrk.format("POST", "/hooks/generic", headers, body)
end
