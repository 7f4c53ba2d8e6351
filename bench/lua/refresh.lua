-- The refresh grant: each request uses the next pre-issued refresh token once
-- (BENCH_TOKENS names the file, one token a line; run with -t1). When the list is
-- used up the requests repeat the last token and fail, which counts as errors.
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  if line ~= "" then tokens[#tokens + 1] = line end
end
local i = 0
local auth = os.getenv("BENCH_AUTH")
request = function()
  i = i + 1
  local token = tokens[math.min(i, #tokens)]
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth}, "grant_type=refresh_token&refresh_token=" .. token)
end
