-- Argo CD health check for MeetergoWebhook (webhooks.meetergo-operator.io).
--
-- Install it as resource.customizations.health.webhooks.meetergo-operator.io_MeetergoWebhook
-- in argocd-cm (docs/argocd.md). Argo CD runs it without Lua's string library,
-- so it uses only the base language.
--
--   Progressing  the operator has not yet acted on the current generation, or
--                registration is under way (no conditions, Ready Unknown or
--                reason Progressing), or the resource is being deleted
--   Suspended    spec.suspend is true (Ready reason Suspended)
--   Degraded     Stalled=True, Ready=False with a failure reason, or a
--                deletion blocked (reason DeletionBlocked); Ready=False
--                includes QuotaExceeded (waiting for one of the company's six
--                slots), which does not resolve until someone frees a slot
--   Healthy      Ready=True
local hs = {}

local function condition(conditions, type)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    if c.reason ~= nil and c.reason ~= "" then
      return c.reason .. ": " .. c.message
    end
    return c.message
  end
  return fallback
end

local status = obj.status or {}
local ready = condition(status.conditions, "Ready")
local stalled = condition(status.conditions, "Stalled")

-- Deleting bumps metadata.generation, so this comes before the generation
-- check: the operator is removing the registration at meetergo.
if obj.metadata.deletionTimestamp ~= nil then
  if ready ~= nil and ready.reason == "DeletionBlocked" then
    hs.status = "Degraded"
    hs.message = describe(ready, "Deletion blocked")
  else
    hs.status = "Progressing"
    hs.message = "Being deleted: the operator removes the registration at meetergo"
  end
  return hs
end

if status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to register the webhook"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

if (obj.spec ~= nil and obj.spec.suspend == true) or (ready ~= nil and ready.reason == "Suspended") then
  hs.status = "Suspended"
  hs.message = describe(ready, "Suspended: no calls are made to meetergo")
  return hs
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

if ready == nil or ready.status == "Unknown" or ready.reason == "Progressing" then
  hs.status = "Progressing"
  hs.message = describe(ready, "Waiting for the webhook to be registered")
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Registered at meetergo")
  return hs
end

hs.status = "Degraded"
hs.message = describe(ready, "Not ready")
return hs
