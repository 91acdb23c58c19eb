'use strict'

// The chain of models of one call (README, "Alternatives"): the primary,
// then each of `alternatives` in order, each with the call's retry,
// timeoutMs and signal. A model benched by a cooldown (a rate limit or an
// overload, here or in another instance sharing the store) is passed over
// without a call; a model that is throttled now is benched for the wait it
// asked for. An alternative with `on` answers only those failure classes
// (lib/classify.js): after a model fails with another class it is passed
// over without a call. The first success answers; when none does, the
// fallbacks (cache, default, queue, skip) get the primary's error.

const native = require('./native')
const { codedError } = require('./invoke')
const { channels, publish, messageOf, carrying } = require('./events')
const { warnOnce } = require('./warnings')
const guards = require('./guards')
const { classOf } = require('./classify')
const hedging = require('./hedge')

// Native calls answer with promises of the addon's own realm, which are not
// `instanceof Promise` in a `vm` context that loaded the package (Jest): a
// pending answer is told by its `then` (as cheap as `instanceof`, where
// util.types.isPromise costs a call into C++ on this hot path).
const isPromise = (value) => typeof value?.then === 'function'

/** `then(value)` now, or once `pending` (a store call on Redis) resolves. */
function whenStored(pending, then) {
  return isPromise(pending) ? pending.then(then) : then(pending)
}

/**
 * Why a name holding a lone surrogate is neither benched nor looked up:
 * the stores hold names as UTF-8, where it becomes U+FFFD, so two such
 * names would share one cooldown (as cache keys, README "Decisions").
 */
const LONE_SURROGATE = 'a model name holds a lone surrogate (it is neither benched nor looked up)'

/** The latest time a `Date` holds, in ms since the epoch. */
const LATEST_DATE_MS = 8.64e15

function warnCooldownsUnavailable(operationName, problem) {
  warnOnce(operationName, 'cooldowns', `the cooldowns of "${operationName}" were unavailable: ${problem}`, 'FALLBACK_STEP_UNAVAILABLE')
}

/**
 * `alternativesOn(error)`, the caller's rule for moving on; a rule that
 * throws (or rejects) moves on (the chain is there for failures). An async
 * rule is awaited: a promise is not a yes.
 */
function movesOn(alternativesOn, error) {
  if (typeof alternativesOn !== 'function') return true
  let answer
  try {
    answer = alternativesOn(error)
    if (answer === null || typeof answer !== 'object' || typeof answer.then !== 'function') return Boolean(answer)
  } catch {
    return true
  }
  return Promise.resolve(answer).then(Boolean, () => true)
}

/**
 * Whether `error` carries anything `throttleMs` reads (a status, headers, a
 * wait, an inner error): most failures carry none, and are told apart here
 * without a call into native code. A getter that throws leaves it to
 * native code, which reads it carefully.
 */
function mayBeThrottled(error) {
  if (error === null || (typeof error !== 'object' && typeof error !== 'function')) return false
  try {
    return (
      error.status !== undefined ||
      error.statusCode !== undefined ||
      error.response !== undefined ||
      error.headers !== undefined ||
      error.responseHeaders !== undefined ||
      error.retryAfterMs !== undefined ||
      error.lastError !== undefined ||
      error.cause !== undefined
    )
  } catch {
    return true
  }
}

/**
 * Benches `name` when `error` is a rate limit or an overload. Resolves (or
 * returns) once the cooldown is stored, so the next call sees it; a store
 * that cannot take it is warned about, never the call's problem.
 */
function benchIfThrottled(call, name, error, settings) {
  if (!mayBeThrottled(error)) return undefined
  let ms = native.throttleMs(error, settings.cooldownMs, settings.maxCooldownMs)
  if (ms === null) return undefined
  if (!name.isWellFormed()) return warnCooldownsUnavailable(call.operationName, LONE_SURROGATE)
  const now = Date.now()
  // No later than a Date can say (maxCooldownMs may be up to 2^53 - 1 ms).
  ms = Math.min(ms, LATEST_DATE_MS - now)
  const message = messageOf(error)
  publish(channels.breaker, () =>
    carrying({ type: 'cooldown', operationName: call.operationName, name, state: 'open', until: new Date(now + ms), cooldownMs: ms, error: message }, error),
  )
  let stored
  try {
    stored = native.benchModel(name, ms, message, now)
  } catch (thrown) {
    stored = messageOf(thrown)
  }
  const warn = (problem) => {
    if (problem !== null && problem !== undefined) warnCooldownsUnavailable(call.operationName, problem)
  }
  return isPromise(stored) ? stored.then(warn, (thrown) => warn(messageOf(thrown))) : warn(stored)
}

/**
 * The second (since the epoch) from which no cooldown runs, as far as the
 * failure store knows without a look-up, kept current by native code from
 * any thread (src/core/quiet.rs): a chain asks the store only while a
 * cooldown may run. `0xFFFFFFFF`: always ask (a store on a server or in a
 * file, which other processes share). One array per environment, made by
 * native code in its own realm, so a `vm` context that loads the package
 * (a Jest test file) is never held by it.
 */
const quietFrom = watchedQuietTime()

function watchedQuietTime() {
  try {
    return native.cooldownSlot()
  } catch {
    return new Uint32Array([0xffffffff])
  }
}

/**
 * Each model's remaining cooldown (`null`: not benched), in one store call;
 * `null` for the whole list when none is benched. A store that cannot
 * answer benches nothing: every model is tried.
 */
function cooldownsOf(call, models) {
  // 0: nothing was ever benched (or all was cleared); no clock needed.
  const quiet = quietFrom[0]
  if (quiet === 0) return null
  const now = Date.now()
  if (now >= quiet * 1000) return null
  const names = models.map((model) => model.name)
  // A name with a lone surrogate is not looked up: held as UTF-8 it would be another's.
  let kept = names
  if (!names.every((name) => name.isWellFormed())) {
    warnCooldownsUnavailable(call.operationName, LONE_SURROGATE)
    kept = names.filter((name) => name.isWellFormed())
  }
  let answer
  try {
    answer = native.cooldownsOf(kept, now)
  } catch (thrown) {
    answer = messageOf(thrown)
  }
  // `null`: no cooldown runs at all (answered without a look-up).
  if (answer === null) return null
  return isPromise(answer) ? answer.then((left) => remainingOf(call, names, kept, left), (thrown) => remainingOf(call, names, kept, messageOf(thrown))) : remainingOf(call, names, kept, answer)
}

/** The store's answer for `kept` (or why it could not say) spread over `names`. */
function remainingOf(call, names, kept, answer) {
  if (answer === null) return null
  if (!Array.isArray(answer)) {
    warnCooldownsUnavailable(call.operationName, answer)
    return null
  }
  if (kept === names) return answer
  let next = 0
  return names.map((name) => (name.isWellFormed() ? answer[next++] : null))
}

/**
 * Says on the alternative channel how the alternative at `index` (1 for
 * the first) fared; `errorClass`: the class of its failure, or of the
 * failure that moved the call to it (when it answered or was passed over).
 */
function alternativeTried(call, name, index, outcome, error, cooldownMs, errorClass) {
  publish(channels.alternative, () => {
    const message = carrying({ type: 'alternative', operationName: call.operationName, alternative: name, index, outcome, error: messageOf(error) }, error)
    if (cooldownMs !== undefined) message.cooldownMs = cooldownMs
    if (errorClass !== undefined) message.errorClass = errorClass
    return message
  })
}

/**
 * The model a call with `hedge` starts beside the one at `index` when that
 * one is slow, and how long it waits: the next model not benched, unless
 * it has shared guards or an `on` of its own (a hedge is no failure to
 * answer); `undefined` for no hedge.
 */
function hedgeOf(call, models, index, remaining) {
  if (call.hedge === undefined) return undefined
  for (let target = index + 1; target < models.length; target++) {
    if (remaining !== null && remaining[target] !== null) continue
    if ((call.guards !== undefined && call.guards[target] !== undefined) || models[target].on !== undefined) return undefined
    const afterMs = hedging.waitFor(call.hedge, models[index].name)
    return afterMs === undefined ? undefined : { target, afterMs }
  }
  return undefined
}

/**
 * Runs the chain and gives `finish(ended)`, where `ended` says how it
 * ended: `{ ok: true, value, index, attempts, error? (the primary's),
 * errorClass? (its class), benched, stored }`, `{ ok: false, error,
 * errorClass?, attempts, benched, stored }`, or `{ cancelled: true }`. `stored`, when there is one, is a promise that
 * resolves once the models throttled in this call are benched in a store
 * that answers later (Redis): the chain moves on without waiting for it (a
 * server that hangs would cost each throttled model `redisTimeoutMs`), and
 * the call waits for it, alongside its own last store step, before it
 * resolves.
 *
 * `runModel(model, index)` runs one model's attempts (retry, timeoutMs,
 * signal) and gives (or resolves) `{ ok, value, error, attempts,
 * cancelled }`. Without it, each model is called once here and its answer
 * awaited directly, `prime(value)` giving the stream it returned primed (or
 * the value itself): one turn of the microtask queue a model, as in a
 * chain written by hand.
 */
async function runChain(call, models, settings, runModel, prime, finish) {
  // Awaited only when it is a promise (on Redis): each await is a turn of the microtask queue.
  let remaining = cooldownsOf(call, models)
  if (isPromise(remaining)) remaining = await remaining
  let benched
  let cooling
  let attempts = 0
  let storing
  // Whether a model failed, apart from what it threw: `throw undefined` is a
  // failure too. The first failure is the primary's when the primary failed
  // (it is tried first); it is the one the call answers with.
  let anyFailed = false
  let firstError
  // The failure classes of the first model that failed, and of the latest.
  let firstClass
  let lastClass
  // What a hedge (lib/hedge.js) got from the model it called, by index.
  let carried
  for (let index = 0; index < models.length; index++) {
    const { name, operation, on } = models[index]
    // Called already, as an earlier model's hedge: its outcome is this model's.
    const hedged = carried === undefined ? undefined : carried.get(index)
    if (hedged === undefined && on !== undefined && !native.answersAfter(on, lastClass)) {
      alternativeTried(call, name, index, 'passedOver', undefined, undefined, lastClass)
      continue
    }
    if (hedged === undefined && remaining !== null && remaining[index] !== null) {
      ;(benched ??= []).push(name)
      ;(cooling ??= []).push({ name, remainingMs: remaining[index] })
      if (index > 0) alternativeTried(call, name, index, 'cooldown', undefined, remaining[index])
      continue
    }
    if (call.signal !== undefined && call.signal.aborted) return finish({ cancelled: true })
    // Its shared breaker, limits and the call's budget (lib/guards.js).
    const guard = hedged !== undefined || call.guards === undefined ? undefined : call.guards[index]
    let admission
    let started
    if (guard !== undefined) {
      admission = guards.admit(call, guard)
      if (isPromise(admission)) {
        admission = await admission
        // The caller gave up while the store answered: the call has
        // rejected, so the model is not called and no fallback runs. A
        // slot it was given is freed at once.
        if (call.signal !== undefined && call.signal.aborted) {
          const released = guards.abandon(call, guard, admission)
          if (isPromise(released)) await released
          return finish({ cancelled: true })
        }
      }
      if (admission.overBudget) {
        call.overBudget = { key: guard.budget[0], resetsAt: admission.resetsAt }
        break
      }
      if (admission.open || admission.limited) {
        if (admission.limited) (call.limited ??= []).push(name)
        else (call.opened ??= []).push(name)
        if (index > 0) alternativeTried(call, name, index, admission.limited ? 'limited' : 'open')
        continue
      }
      guards.admitted(guard, admission)
      started = Date.now()
    }
    let ok
    let value
    let error
    let raw
    const hedge = hedged === undefined && runModel === undefined ? hedgeOf(call, models, index, remaining) : undefined
    if (hedged !== undefined) {
      ;({ ok, value, error } = hedged)
    } else if (hedge !== undefined) {
      const { target, afterMs } = hedge
      const raced = await hedging.race(models[index], models[target], afterMs, call.hedge, prime, () => alternativeTried(call, models[target].name, target, 'hedge'))
      if (raced.second !== undefined) (carried ??= new Map()).set(target, raced.second)
      if (raced.winner === 'second') call.hedged = true
      if (raced.first === undefined) {
        // Abandoned: the hedge answered first. A probe that never answered
        // is no verdict (it runs out as a hung one does): its slot is freed.
        if (guard !== undefined) {
          if (admission.probe === true) guards.abandon(call, guard, admission)
          else guards.settle(call, guard, admission, started, false, undefined)
        }
        continue
      }
      ;({ ok, value, error } = raced.first)
    } else if (runModel === undefined) {
      try {
        const begun = call.hedge === undefined ? 0 : Date.now()
        // Called as a plain function, as every other path calls it: not
        // as a method of the chain's own model entry.
        value = await operation()
        // What the operation returned, before a stream in it is primed: its usage (lib/guards.js).
        raw = value
        const primed = prime(value)
        if (primed !== value) value = await primed
        ok = true
        // Its answer time, for `hedge: { afterMs: 'p95' }`.
        if (call.hedge !== undefined) hedging.observe(name, Date.now() - begun)
      } catch (thrown) {
        ok = false
        error = thrown
      }
    } else {
      let outcome = runModel(models[index], index)
      if (isPromise(outcome)) outcome = await outcome
      if (outcome.cancelled) {
        // The caller gave up on it: its slot is free again (no verdict for its breaker).
        if (guard !== undefined) {
          const released = guards.abandon(call, guard, admission)
          if (isPromise(released)) await released
        }
        return finish(outcome)
      }
      attempts += outcome.attempts || 0
      ;({ ok, value, error } = outcome)
    }
    if (guard !== undefined) {
      const settling = guards.settle(call, guard, admission, started, !ok, raw ?? value)
      if (isPromise(settling)) (storing ??= []).push(settling)
    }
    if (ok) {
      if (index > 0) alternativeTried(call, name, index, 'success', undefined, undefined, lastClass)
      return finish({ ok: true, value, index, attempts, error: firstError, errorClass: firstClass, benched: benched ?? [], stored: storing && Promise.all(storing) })
    }
    lastClass = classOf(error)
    if (!anyFailed) {
      anyFailed = true
      firstError = error
      firstClass = lastClass
    }
    const benching = benchIfThrottled(call, name, error, settings)
    if (isPromise(benching)) (storing ??= []).push(benching)
    if (index > 0) alternativeTried(call, name, index, 'failure', error, undefined, lastClass)
    let movingOn = movesOn(call.alternativesOn, error)
    if (movingOn instanceof Promise) movingOn = await movingOn
    if (!movingOn) break
  }
  let error = firstError
  let errorClass = firstClass
  if (!anyFailed) {
    // Every model was passed over: the core says which reason is named (src/core/chain.rs).
    const refusal = native.chainRefusal(call.operationName, { overBudget: call.overBudget, limited: call.limited, opened: call.opened, cooling })
    error = codedError(refusal.message, refusal.code)
    errorClass = undefined
  }
  return finish({ ok: false, error, errorClass, attempts, benched: benched ?? [], stored: storing && Promise.all(storing) })
}

module.exports = { runChain, benchIfThrottled, whenStored }
