-- wrk script: HTTP/1.1 pipelining. Each write carries a batch of requests (default 16, or the first
-- script argument: wrk ... -s pipeline.lua URL -- 16); wrk sends the next batch when all are answered.
local batch

function init(args)
   local depth = tonumber(args[1]) or 16
   local requests = {}
   for i = 1, depth do
      requests[i] = wrk.format()
   end
   batch = table.concat(requests)
end

function request()
   return batch
end
