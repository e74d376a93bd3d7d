-- Argo CD health check for CloudNativePG ScheduledBackup (postgresql.cnpg.io/v1).
-- CloudNativePG 1.30 reports problems of the schedule itself only through
-- status.error (the admission validation error, cleared once the spec is
-- valid again); the outcome of each backup lives on the Backup objects it
-- creates and on the barman-cloud ObjectStore status.
-- Argo CD runs argocd-cm health scripts without the Lua standard libraries
-- (only base, table and a safe os): do not use string.* here.
local hs = {}

if obj.status ~= nil and obj.status.error ~= nil and obj.status.error ~= "" then
  hs.status = "Degraded"
  hs.message = obj.status.error
  return hs
end

hs.status = "Healthy"
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.message = "Scheduled backups are suspended"
elseif obj.status ~= nil and obj.status.lastScheduleTime ~= nil and obj.status.nextScheduleTime ~= nil then
  hs.message = "Last backup scheduled at " .. obj.status.lastScheduleTime .. ", next at " .. obj.status.nextScheduleTime
elseif obj.status ~= nil and obj.status.nextScheduleTime ~= nil then
  hs.message = "Next backup at " .. obj.status.nextScheduleTime
else
  hs.message = "Waiting for the first schedule"
end
return hs
