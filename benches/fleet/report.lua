-- wrk script: POSTs a real node report (REPORT_TEMPLATE, with __NODE__ where the name goes) to
-- /api/v1/reports, rotating over NODES distinct node names (default 20000).
local template
local nodes = tonumber(os.getenv("NODES") or "20000")
local counter = 0
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  local f = assert(io.open(os.getenv("REPORT_TEMPLATE"), "r"))
  template = f:read("*a")
  f:close()
  counter = (id or 0) * 7919
end

function request()
  counter = counter + 1
  local name = string.format("bench-node-%05d", counter % nodes)
  local body = template:gsub("__NODE__", name)
  return wrk.format("POST", "/api/v1/reports", { ["Content-Type"] = "application/json" }, body)
end
