-- Argo CD health check for CloudNativePG Cluster (postgresql.cnpg.io/v1).
-- Phase strings are the constants of CloudNativePG 1.30 (api/v1/cluster_types.go).
-- Argo CD runs argocd-cm health scripts without the Lua standard libraries
-- (only base, table and a safe os): do not use string.* here.
local hs = {}

-- Hibernation is declared with the cnpg.io/hibernation annotation; the
-- operator then removes the pods and, later, sets the condition below.
if obj.metadata ~= nil and obj.metadata.annotations ~= nil and obj.metadata.annotations["cnpg.io/hibernation"] == "on" then
  hs.status = "Suspended"
  hs.message = "Cluster is hibernated (cnpg.io/hibernation: on)"
  return hs
end

if obj.status == nil or obj.status.phase == nil or obj.status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end

-- A hibernated cluster has no pods on purpose (cnpg.io/hibernation=on).
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "cnpg.io/hibernation" and c.status == "True" then
      hs.status = "Suspended"
      hs.message = "Cluster has been hibernated"
      return hs
    end
  end
end

local phase = obj.status.phase
local message = phase
if obj.status.phaseReason ~= nil and obj.status.phaseReason ~= "" then
  message = phase .. ": " .. obj.status.phaseReason
end

-- Phases the operator does not leave without a change to the spec,
-- the operator installation or a human.
local failed = {
  ["Cluster is unrecoverable and needs manual intervention"] = true,
  ["Invalid cluster definition"] = true,
  ["Unable to create required cluster objects"] = true,
  ["Cluster has incomplete or invalid image catalog"] = true,
  ["Cluster cannot execute instance online upgrade due to missing architecture binary"] = true,
}
if failed[phase] then
  hs.status = "Degraded"
  hs.message = message
  return hs
end

-- WAL archiving that fails (the instance reports it in this condition)
-- means the Cluster's archive, and so every child cloned from it, falls
-- behind: never Healthy, whatever the phase says.
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "ContinuousArchiving" and c.status == "False" then
      hs.status = "Degraded"
      hs.message = "WAL archiving is failing"
      if c.message ~= nil and c.message ~= "" then
        hs.message = hs.message .. ": " .. c.message
      end
      hs.message = hs.message .. " (" .. phase .. ")"
      return hs
    end
  end
end

-- The plugin phases are transient: the operator reaches the Barman Cloud
-- plugin only once the plugin's pod is up and registered (right after an
-- install or a restart of either), and retries on its own.
if phase == "Cluster cannot proceed to reconciliation due to an unknown plugin being required" or
   phase == "Cluster cannot proceed to reconciliation due to an error while interacting with plugins" then
  hs.status = "Progressing"
  hs.message = message .. " (waiting for the plugin; check the plugin's pod and the operator's log if it lasts)"
  return hs
end

-- A supervised switchover or restart is waiting for a human.
if phase == "Waiting for user action" then
  hs.status = "Suspended"
  hs.message = message
  return hs
end

if phase == "Cluster in healthy state" then
  local wanted = 1
  if obj.spec ~= nil and obj.spec.instances ~= nil then
    wanted = obj.spec.instances
  end
  local ready = 0
  if obj.status.readyInstances ~= nil then
    ready = obj.status.readyInstances
  end
  hs.message = message .. " (" .. ready .. "/" .. wanted .. " instances ready)"
  if ready == wanted then
    hs.status = "Healthy"
  else
    hs.status = "Progressing"
  end
  return hs
end

-- Setting up primary, Creating a new replica, Failing over, Switchover in
-- progress, upgrades, restarts, Applying configuration, ...
hs.status = "Progressing"
hs.message = message
return hs
