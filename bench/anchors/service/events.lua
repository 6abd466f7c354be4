-- wrk: POST /events, one signup event of a random user (1..1000, the users
-- weft serve seeds its SQLite database with, so the workers record them)
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  return wrk.format(nil, "/events", nil,
    '{"type":"signup","user_id":' .. math.random(1, 1000) .. ',"data":{"plan":"free","source":"wrk"}}')
end
