-- The shared guards' records (src/core/shared/: breakers, limits,
-- budgets), prepended to each record command after guards.lua. The
-- decisions are made by the instances (records.rs); the server only makes
-- each read-decide-write atomic, by a compare-and-swap.
--
-- KEYS[1]: the key head, "{prefix}:g:"; KEYS[2..]: the fixed keys, head ..
-- NAMES[i - 1]:
--   stat       hash writes (the probe)
-- and, made from the head, <kind>:<name>: one record (a string, kept
-- with an expiry), and i:<kind>: the names of a kind's records by their
-- expiry (a zset, for listing). Kinds are one letter, so no record meets
-- an index or a fixed key.

local head = KEYS[1]
local NAMES = {'stat'}
local KINDS = {'hash'}
local STAT = KEYS[2]

guard_keys(KINDS)

local function record_key(kind, name) return head .. kind .. ':' .. name end
local function index_key(kind) return head .. 'i:' .. kind end
