-- sts-pilot: Argo CD health for apps/StatefulSet (docs/gitops.md).
-- Subscribed StatefulSets (the label below): Progressing while sts-pilot holds or
-- moves a rollout, Degraded when a policy halted it or the controller records a
-- hold that needs a person, Suspended when a person paused it, Healthy when every
-- pod runs the update revision and sts-pilot owes its hook nothing. Any other
-- StatefulSet: what Argo CD's built-in check says (this script replaces it).
-- Needs resource.customizations.useOpenLibs.apps_StatefulSet: "true" for the
-- string library (reading sts-pilot.io/status); without it a halt shows as
-- Suspended and a recorded hold as Progressing.
local LABEL_KEY = "sts-pilot.io/hook"

local hs = {}
local md = obj.metadata or {}
local spec = obj.spec or {}
local st = obj.status or {}
local labels = md.labels or {}
local ann = md.annotations or {}
local strategy = spec.updateStrategy or {}
local gen = md.generation or 0
local og = st.observedGeneration or 0
local ready = st.readyReplicas or 0
local updated = st.updatedReplicas or 0

if labels[LABEL_KEY] == nil then
  -- Argo CD's built-in StatefulSet health, said again.
  if og == 0 or gen > og then
    hs.status = "Progressing"
    hs.message = "Waiting for statefulset spec update to be observed..."
    return hs
  end
  if spec.replicas ~= nil and ready < spec.replicas then
    hs.status = "Progressing"
    hs.message = "Waiting for " .. (spec.replicas - ready) .. " pods to be ready..."
    return hs
  end
  if strategy.type == "RollingUpdate" and strategy.rollingUpdate ~= nil then
    local p = strategy.rollingUpdate.partition
    if spec.replicas ~= nil and p ~= nil and updated < spec.replicas - p then
      hs.status = "Progressing"
      hs.message = "Waiting for partitioned roll out to finish: " .. updated .. " out of " .. (spec.replicas - p) .. " new pods have been updated..."
      return hs
    end
    hs.status = "Healthy"
    hs.message = "partitioned roll out complete: " .. updated .. " new pods have been updated..."
    return hs
  end
  if strategy.type == "OnDelete" then
    hs.status = "Healthy"
    hs.message = "statefulset has " .. ready .. " ready pods"
    return hs
  end
  if st.updateRevision ~= st.currentRevision then
    hs.status = "Progressing"
    hs.message = "waiting for statefulset rolling update to complete " .. updated .. " pods at revision " .. tostring(st.updateRevision) .. "..."
    return hs
  end
  hs.status = "Healthy"
  hs.message = "statefulset rolling update complete " .. (st.currentReplicas or 0) .. " pods at revision " .. tostring(st.currentRevision) .. "..."
  return hs
end

if og == 0 or og ~= gen then
  hs.status = "Progressing"
  hs.message = "waiting for the StatefulSet controller to observe generation " .. gen
  return hs
end

local n = spec.replicas or 1
local upd = st.updateRevision or ""
local kind = strategy.type or "RollingUpdate"
local partition = 0
if strategy.rollingUpdate ~= nil and strategy.rollingUpdate.partition ~= nil then
  partition = strategy.rollingUpdate.partition
end

-- The controller's record (JSON written by JSON.stringify): its own top-level
-- "state" is the only one with a capital letter, and "message" follows it.
-- Quotes inside a message are escaped, so these patterns cannot match there.
local record = ann["sts-pilot.io/status"] or ""
local state, message, mark = nil, nil, false
if string ~= nil then
  for s in string.gmatch(record, '"state":"(%u%a*)"') do state = s end
  if state ~= nil then
    message = string.match(record, '"state":"' .. state .. '","message":"(.-)","since"')
  end
  mark = string.find(record, '"rollout":{', 1, true) ~= nil
end

local progress = updated .. "/" .. n .. " pods at the update revision " .. (upd ~= "" and upd or "(not reported yet)") .. ", partition " .. partition
local done = upd ~= "" and (st.replicas or 0) == n and updated == n and ready == n and (st.availableReplicas or 0) == n
  and not mark and ann["sts-pilot.io/requested-replicas"] == nil
  and (kind == "OnDelete" or (kind == "RollingUpdate" and st.currentRevision == upd and partition >= n))
if done then
  hs.status = "Healthy"
  hs.message = "all " .. n .. " pods run " .. upd
  return hs
end

local paused = ann["sts-pilot.io/paused"]
if paused ~= nil and paused ~= "false" then
  if paused ~= "true" then
    hs.status = "Degraded"
    hs.message = 'annotation sts-pilot.io/paused must be "true" or "false"'
    return hs
  end
  if state == "Paused" and message ~= nil and string.sub(message, 1, 7) == "policy " then
    hs.status = "Degraded"
    hs.message = "halted: " .. message
    return hs
  end
  hs.status = "Suspended"
  hs.message = "paused (sts-pilot.io/paused): " .. progress
  return hs
end
if state == "Held" or state == "Unmanageable" then
  hs.status = "Degraded"
  hs.message = "held: " .. (message or "")
  return hs
end
hs.status = "Progressing"
hs.message = progress
if state == "Rolling" and message ~= nil and message ~= "" then
  hs.message = progress .. ": " .. message
end
return hs
