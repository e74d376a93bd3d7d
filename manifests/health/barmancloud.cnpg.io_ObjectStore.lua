-- Argo CD health check for the barman-cloud plugin's ObjectStore
-- (barmancloud.cnpg.io/v1, plugin-barman-cloud v0.15.0).
-- The only status is serverRecoveryWindow: per server name, the
-- first recoverability point and the last successful / failed backup times.
-- A server whose last failed backup is newer than its last successful one
-- (or that never had a successful one) makes the store Degraded.
-- Timestamps are RFC 3339 in UTC, so they compare correctly as strings.
-- Argo CD runs argocd-cm health scripts without the Lua standard libraries
-- (only base, table and a safe os): do not use string.* here.
local hs = {}
hs.status = "Healthy"
hs.message = "No backup recorded yet"

if obj.status == nil or obj.status.serverRecoveryWindow == nil then
  return hs
end

local servers = {}
for server, _ in pairs(obj.status.serverRecoveryWindow) do
  table.insert(servers, server)
end
table.sort(servers)

local failing = {}
local succeeded = {}
for _, server in ipairs(servers) do
  local window = obj.status.serverRecoveryWindow[server]
  local lastFailed = window.lastFailedBackupTime
  local lastSuccessful = window.lastSuccessfulBackupTime
  if lastFailed ~= nil and (lastSuccessful == nil or lastFailed > lastSuccessful) then
    table.insert(failing, server .. " (last backup failed at " .. lastFailed .. ")")
  elseif lastSuccessful ~= nil then
    table.insert(succeeded, server)
  end
end

if #failing > 0 then
  hs.status = "Degraded"
  hs.message = "Backups failing for " .. table.concat(failing, ", ")
  return hs
end
if #succeeded > 0 then
  hs.message = "Last backup succeeded for " .. table.concat(succeeded, ", ")
end
return hs
