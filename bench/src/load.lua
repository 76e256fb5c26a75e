-- The requests of every benchmark scenario, for wrk (https://github.com/wg/wrk).
--
-- `hospital-bench` runs: wrk -t T -c C -d D -s load.lua URL -- SCENARIO FIXTURES_DIR THREADS BASE_EPOCH
-- FIXTURES_DIR holds what the harness seeded: token (a receptionist's access token),
-- login (username and password), patient_ids, queries, pairs (doctor_id patient_id per line).
-- Each wrk thread runs this file in its own Lua state; `setup` numbers them, so the bookings
-- of different threads never ask for the same slot.

local thread_count = 0
function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

local function lines(path)
  local list = {}
  for line in io.lines(path) do
    if line ~= "" then list[#list + 1] = line end
  end
  return list
end

local function read_all(path)
  local file = assert(io.open(path, "r"))
  local text = file:read("*l")
  file:close()
  return text
end

local scenario, headers, json_headers, ids, queries, pairs, login_body
local n, step, threads, base_epoch = 0, 1, 1, 0

function init(args)
  scenario = args[1]
  local dir = args[2]
  threads = tonumber(args[3])
  base_epoch = tonumber(args[4])
  n = thread_index or 0
  step = threads
  local token = read_all(dir .. "/token")
  headers = { ["Authorization"] = "Bearer " .. token }
  json_headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
  ids = lines(dir .. "/patient_ids")
  queries = lines(dir .. "/queries")
  pairs = lines(dir .. "/pairs")
  login_body = read_all(dir .. "/login")
end

local function get_patient(i)
  return wrk.format("GET", "/api/patients/" .. ids[(i % #ids) + 1], headers)
end

local function search(i)
  return wrk.format("GET", "/api/patients?limit=20&q=" .. queries[(i % #queries) + 1], headers)
end

-- A deep page: the 50 patients registered after a random one.
local function list(i)
  return wrk.format("GET", "/api/patients?limit=50&after=" .. ids[((i * 7919) % #ids) + 1], headers)
end

local sexes = { "female", "male", "other", "unknown" }
local function register(i)
  local body = string.format(
    '{"name":"Bench Patient %d","birth_date":"%04d-%02d-%02d","sex":"%s","phone":"+1 555 %07d"}',
    i, 1930 + i % 90, 1 + i % 12, 1 + i % 28, sexes[(i % 4) + 1], i % 10000000)
  return wrk.format("POST", "/api/patients", json_headers, body)
end

-- Booking number i: pair i mod P (each pair has its own doctor and its own patient), slot i div P
-- (30 minutes each from BASE_EPOCH), so no two bookings overlap for a doctor or a patient.
local function book(i)
  local pair = pairs[(i % #pairs) + 1]
  local doctor, patient = pair:match("(%S+) (%S+)")
  local start = base_epoch + math.floor(i / #pairs) * 1800
  local body = string.format(
    '{"patient_id":"%s","doctor_id":"%s","start":"%s","duration_minutes":30,"reason":"Check-up"}',
    patient, doctor, os.date("!%Y-%m-%dT%H:%M:%SZ", start))
  return wrk.format("POST", "/api/appointments", json_headers, body)
end

local function login(i)
  return wrk.format("POST", "/auth/login", { ["Content-Type"] = "application/json" }, login_body)
end

-- A front desk's day: mostly looking patients up, some registrations and bookings.
-- Out of 20 requests: 10 reads by id, 5 searches, 3 registrations, 2 bookings.
local mixed_counter = 0
local function mixed(i)
  local kind = i % 20
  if kind < 10 then return get_patient(i) end
  if kind < 15 then return search(i) end
  if kind < 18 then return register(i) end
  -- Bookings get their own numbering, so their slots stay distinct.
  local b = mixed_counter * threads + (thread_index or 0)
  mixed_counter = mixed_counter + 1
  return book(b)
end

local scenarios = {
  get_patient = get_patient, search = search, list = list, register = register,
  book = book, login = login, mixed = mixed,
  -- The ceilings: the same request shape as a read by id.
  ceiling = function(i) return wrk.format("GET", "/", headers) end,
}

function request()
  local i = n
  n = n + step
  return scenarios[scenario](i)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"errors":%d,"status_errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99), latency.max))
end

-- With BENCH_SHOW_ERRORS set, the first failed answers of each thread are printed (defining
-- `response` makes wrk hand every answer to Lua, which costs throughput: off by default).
if os.getenv("BENCH_SHOW_ERRORS") then
  local shown = 0
  function response(status, headers, body)
    if status >= 400 and shown < 3 then
      shown = shown + 1
      io.write("BENCH_ERROR ", status, " ", body, "\n")
    end
  end
end
