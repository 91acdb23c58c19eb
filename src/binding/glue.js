// Evaluated once per JavaScript environment (src/binding/env.rs). Object
// literals here get V8's fast fixed shapes and cost one call from native
// code, where building the same object property by property would cost one
// boundary crossing (and one key lookup) per property. Every decision stays
// in Rust: these functions only shape results and chain promises.
(function (storeSuccess, onRejected, service, retry, worker, messages, executeChecked, optionNames) {
  'use strict';

  const SUCCESS = messages.success;

  // `attempts` is set only for calls with a `retry` option; without one the
  // results keep the contract's exact shapes.
  function succeeded(data, attempts) {
    const result = { success: true, data: data, message: SUCCESS, timestamp: new Date() };
    if (attempts !== undefined) result.metadata = { attempts: attempts };
    return result;
  }

  // Calls `fn(...args)` and always returns a promise: a synchronous throw
  // becomes a rejection, a plain value a fulfilled promise.
  function invoke(fn, ...args) {
    try {
      return Promise.resolve(fn(...args));
    } catch (thrown) {
      return Promise.reject(thrown);
    }
  }

  // executeWithFallback's promise: a success is cached (when there is a
  // cache key) and shaped here; a failure goes to the Rust fallback chain
  // with the call's checked options, passed along so that nothing needs
  // to be read again.
  function settle(promise, prompt, modelId, defaultValue, operationName, userId, service, allowSkip, queueCode, payload, tries) {
    return Promise.resolve(promise).then(
      function (value) {
        if (prompt !== undefined && value !== undefined && value !== null) {
          let text;
          try {
            text = JSON.stringify(value);
          } catch (_) {
            // A result JSON cannot hold is returned all the same, just not cached.
          }
          if (typeof text === 'string') storeSuccess(prompt, modelId, text, Date.now());
        }
        return succeeded(value, tries === undefined ? undefined : tries.attempts);
      },
      function (error) {
        const attempts = tries === undefined ? undefined : tries.attempts;
        return onRejected(error, prompt, modelId, defaultValue, operationName, userId, service, allowSkip, queueCode, payload, attempts);
      },
    );
  }

  // dedupe: the result promise of each (prompt, modelId) call in flight.
  const inflight = new Map();
  function dedupeKey(prompt, modelId) {
    return modelId.length + ':' + modelId + prompt;
  }

  // executeWithFallback as exported: reads the options here (a property
  // read costs nanoseconds in JavaScript, and far more from native code)
  // and hands them to the native entry in one call, which checks them,
  // calls the operation and runs everything after.
  function executeWithFallback(operation, options) {
    if (options === null || typeof options !== 'object') return executeChecked(operation, options);
    const args = [operation, options];
    try {
      for (let i = 0; i < optionNames.length; i++) args.push(options[optionNames[i]]);
    } catch (thrown) {
      // A getter that throws: bad arguments, so the promise rejects.
      return Promise.reject(thrown);
    }
    return executeChecked.apply(undefined, args);
  }

  return {
    executeWithFallback: executeWithFallback,

    inflight(prompt, modelId) {
      return inflight.get(dedupeKey(prompt, modelId));
    },

    track(prompt, modelId, promise) {
      const key = dedupeKey(prompt, modelId);
      inflight.set(key, promise);
      const done = function () {
        if (inflight.get(key) === promise) inflight.delete(key);
      };
      promise.then(done, done);
      return promise;
    },

    // executeWithFallback's promise: a success is cached (when there is a
    // cache key) and shaped here; a failure goes to the Rust fallback chain
    // with the call's checked options, passed along so that nothing needs
    // to be read again.
    settle: settle,

    // executeWithFallback with `retry`, `timeoutMs` or `signal`: attempts
    // until one succeeds. After a failure `retryIf` may say no, then the Rust
    // side decides whether to retry and how long to wait (retry.next), and
    // the wait is a Rust timer (retry.after). With `timeoutMs` each attempt
    // gets an AbortSignal (its first argument) that aborts when a Rust timer
    // runs out first, failing the attempt with code 'TIMEOUT'. The caller's
    // `signal` cancels the whole call: the attempt's signal aborts, no timer
    // is left, no fallback runs, and the call rejects with the signal's
    // reason. `tries.attempts` counts the attempts.
    attempts(operation, maxRetries, baseDelay, maxDelay, decorrelated, retryIf, tries, timeoutMs, signal, settleArgs) {
      let cancelled = false;
      let onCancel = null;
      const cancellation = new Promise(function (_, reject) {
        onCancel = reject;
      });
      let attemptController = null;
      let timeoutTimer = 0;
      let retryTimer = 0;
      function stopTimers() {
        if (timeoutTimer) retry.cancel(timeoutTimer);
        if (retryTimer) retry.cancel(retryTimer);
        timeoutTimer = retryTimer = 0;
      }
      function abortedBy() {
        cancelled = true;
        stopTimers();
        if (attemptController) attemptController.abort(signal.reason);
        onCancel(signal.reason);
      }
      if (signal) {
        if (signal.aborted) return Promise.reject(signal.reason);
        signal.addEventListener('abort', abortedBy, { once: true });
      }
      const outcome = new Promise(function (resolve, reject) {
        let previous = 0;
        function attempt() {
          retryTimer = 0;
          if (cancelled) return;
          tries.attempts++;
          let settled = false;
          const controller = timeoutMs >= 0 || signal ? new AbortController() : null;
          attemptController = controller;
          const promise = controller ? invoke(operation, controller.signal) : invoke(operation);
          const timedOut = timeoutMs >= 0
            ? new Promise(function (_, rejectTimeout) {
                timeoutTimer = retry.after(timeoutMs, function () {
                  timeoutTimer = 0;
                  const error = new Error('The operation timed out after ' + timeoutMs + ' ms');
                  error.code = 'TIMEOUT';
                  // The attempt fails first: an operation that settles from
                  // its abort listener is too late.
                  rejectTimeout(error);
                  controller.abort(error);
                });
              })
            : null;
          (timedOut ? Promise.race([promise, timedOut]) : promise).then(
            function (value) {
              if (settled || cancelled) return;
              settled = true;
              stopTimers();
              resolve(value);
            },
            function (error) {
              if (settled || cancelled) return;
              settled = true;
              stopTimers();
              let again = true;
              if (typeof retryIf === 'function') {
                try {
                  again = Boolean(retryIf(error));
                } catch (_) {
                  again = false;
                }
              }
              const delay = again
                ? retry.next(error, tries.attempts, previous, maxRetries, baseDelay, maxDelay, decorrelated)
                : -1;
              if (delay < 0) {
                reject(error);
                return;
              }
              previous = delay;
              retryTimer = retry.after(delay, attempt);
            },
          );
        }
        attempt();
      });
      const result = settle.apply(null, [outcome].concat(settleArgs));
      if (!signal) return result;
      const settledCall = Promise.race([result, cancellation]);
      const removeListener = function () {
        signal.removeEventListener('abort', abortedBy);
      };
      settledCall.then(removeListener, removeListener);
      return settledCall;
    },

    succeeded: succeeded,

    // executeService: attempts, with the Rust side deciding after each
    // failure whether to retry and timing the wait (service.failed schedules
    // `attempt` itself and returns the delay, or -1 to give up); then the
    // caller's fallback, then its graceful degradation, then the failure.
    runService(operation, name, maxRetries, baseDelay, maxDelay, trial, rejected, fallback, degrade) {
      return new Promise(function (resolve) {
        let attempts = 0;
        let previous = 0;

        function finish(error) {
          const circuitState = service.state(name);
          const message = service.message(error);
          const steps = [];
          if (typeof fallback === 'function') steps.push(['fallback', fallback]);
          if (typeof degrade === 'function') steps.push(['gracefulDegradation', degrade]);
          let step = 0;
          function next() {
            if (step >= steps.length) {
              resolve({
                success: false,
                error: service.asError(error, message),
                message: message,
                timestamp: new Date(),
                metadata: { attempts: attempts, circuitState: circuitState, originalError: message },
              });
              return;
            }
            const [kind, produce] = steps[step++];
            invoke(produce).then(function (data) {
              resolve({
                success: true,
                data: data,
                message: messages.fallback,
                timestamp: new Date(),
                metadata: { attempts: attempts, usedFallback: true, fallbackType: kind, circuitState: circuitState, originalError: message },
              });
            }, next);
          }
          next();
        }

        function attempt() {
          attempts++;
          invoke(operation).then(
            function (value) {
              service.succeeded(name);
              resolve({ success: true, data: value, message: SUCCESS, timestamp: new Date(), metadata: { attempts: attempts, circuitState: 'closed' } });
            },
            function (error) {
              const delay = service.failed(name, error, attempts, previous, maxRetries, baseDelay, maxDelay, trial, attempt);
              if (delay >= 0) previous = delay;
              else finish(error);
            },
          );
        }

        if (rejected) finish(service.openError(name));
        else attempt();
      });
    },

    // backgroundJobQueue.process: the worker loop. Native code decides which
    // jobs start (worker.take), completes or fails them (worker.done), renews
    // their leases (worker.renew) and times everything (retry.after); this
    // calls the handlers and the event callbacks.
    startWorker(id, handlers, pollMs, jobTimeoutMs, renewMs, onCompleted, onFailed, onDeadLetter) {
      const running = new Map();
      let stopping = false;
      let pollTimer = 0;
      let whenIdle = null;

      function notify(callback, a, b) {
        if (typeof callback !== 'function') return;
        try {
          callback(a, b);
        } catch (_) {
          // An event callback's throw must not stop the worker.
        }
      }

      function fill() {
        if (stopping) return;
        const jobs = worker.take(id);
        // Jobs taken but not started when a handler stops the worker are
        // handed back by worker.close.
        for (let i = 0; i < jobs.length && !stopping; i++) run(jobs[i]);
      }

      // A freed slot is refilled on a later turn of the event loop (a Rust
      // timer), never from the finishing job's own promise reaction, so that
      // a handler that enqueues more work cannot starve everything else.
      let refillTimer = 0;
      function refillSoon() {
        if (stopping || refillTimer) return;
        refillTimer = retry.after(0, function () {
          refillTimer = 0;
          fill();
        });
      }

      function poll() {
        pollTimer = 0;
        if (stopping) return;
        fill();
        pollTimer = retry.after(pollMs, poll);
      }

      function run(job) {
        const controller = new AbortController();
        const entry = { controller: controller, renewTimer: 0, timeoutTimer: 0 };
        running.set(job.id, entry);
        function renew() {
          entry.renewTimer = retry.after(renewMs, function () {
            worker.renew(id, job.id);
            renew();
          });
        }
        renew();
        const handler = typeof handlers === 'function' ? handlers : handlers[job.type];
        let promise = typeof handler === 'function'
          ? invoke(handler, job, controller.signal)
          : Promise.reject(new Error('No handler for jobs of type ' + job.type));
        if (jobTimeoutMs >= 0) {
          promise = Promise.race([
            promise,
            new Promise(function (_, reject) {
              entry.timeoutTimer = retry.after(jobTimeoutMs, function () {
                entry.timeoutTimer = 0;
                const error = new Error('The job timed out after ' + jobTimeoutMs + ' ms');
                error.code = 'TIMEOUT';
                reject(error);
                controller.abort(error);
              });
            }),
          ]);
        }
        function finish(ok, error) {
          if (running.get(job.id) !== entry) return;
          running.delete(job.id);
          if (entry.renewTimer) retry.cancel(entry.renewTimer);
          if (entry.timeoutTimer) retry.cancel(entry.timeoutTimer);
          const after = worker.done(id, job.id, ok, error);
          if (after) {
            if (ok) notify(onCompleted, after[0]);
            else {
              notify(onFailed, after[0], error);
              if (after[1]) notify(onDeadLetter, after[0]);
            }
          }
          if (running.size === 0 && whenIdle) whenIdle();
          refillSoon();
        }
        promise.then(
          function () {
            finish(true);
          },
          function (error) {
            finish(false, error);
          },
        );
      }

      // The first look happens on a later turn too: process() returns the
      // handle before any handler runs.
      pollTimer = retry.after(0, poll);

      let stopped = null;
      return {
        get running() {
          return running.size;
        },
        // Every call gets the first call's promise (and its grace).
        stop(options) {
          if (stopped) return stopped;
          const graceMs = options && typeof options.graceMs === 'number' && options.graceMs >= 0 ? options.graceMs : 0;
          stopping = true;
          worker.stop(id);
          if (pollTimer) retry.cancel(pollTimer);
          if (refillTimer) retry.cancel(refillTimer);
          pollTimer = refillTimer = 0;
          stopped = new Promise(function (resolve) {
            let graceTimer = 0;
            function close() {
              if (graceTimer) retry.cancel(graceTimer);
              whenIdle = null;
              running.forEach(function (entry) {
                if (entry.renewTimer) retry.cancel(entry.renewTimer);
                if (entry.timeoutTimer) retry.cancel(entry.timeoutTimer);
                const error = new Error('The worker stopped');
                error.code = 'WORKER_STOPPED';
                entry.controller.abort(error);
              });
              running.clear();
              worker.close(id);
              resolve();
            }
            if (running.size === 0) {
              close();
              return;
            }
            whenIdle = close;
            graceTimer = retry.after(graceMs, close);
          });
          return stopped;
        },
      };
    },

    breakerStatus(state, failureCount, openedAt) {
      const status = { state: state, failureCount: failureCount };
      if (openedAt !== undefined) status.openedAt = new Date(openedAt);
      return status;
    },

    fellBack(data, message, fallbackType, jobId, stale, attempts, skippedWithoutCalling) {
      const metadata = { usedFallback: true, fallbackType: fallbackType };
      if (jobId !== undefined) metadata.jobId = jobId;
      if (stale) metadata.stale = true;
      if (skippedWithoutCalling) metadata.skippedWithoutCalling = true;
      if (attempts !== undefined) metadata.attempts = attempts;
      return { success: true, data: data, message: message, timestamp: new Date(), metadata: metadata };
    },

    failed(error, message, attempts) {
      const metadata = { usedFallback: false, originalError: message };
      if (attempts !== undefined) metadata.attempts = attempts;
      return { success: false, error: error, message: message, timestamp: new Date(), metadata: metadata };
    },

    fallbackResult(success, hasData, data, fallbackType, message, stale) {
      const result = hasData
        ? { success: success, data: data, usedFallback: success, fallbackType: fallbackType, message: message }
        : { success: success, usedFallback: success, fallbackType: fallbackType, message: message };
      if (stale) result.metadata = { stale: true };
      return result;
    },

    cachedResponse(prompt, responseJson, timestamp, modelId, expiresAt) {
      return {
        prompt: prompt,
        response: JSON.parse(responseJson),
        timestamp: new Date(timestamp),
        modelId: modelId,
        expiresAt: new Date(expiresAt),
      };
    },

    cacheStats(size, oldest, newest, hits, misses, evictions, bytes) {
      const stats = { size: size };
      if (size > 0) {
        stats.oldestEntry = new Date(oldest);
        stats.newestEntry = new Date(newest);
      }
      stats.hits = hits;
      stats.misses = misses;
      stats.evictions = evictions;
      stats.bytes = bytes;
      return stats;
    },

    job(id, type, operation, payloadJson, userId, priority, createdAt, retryCount, maxRetries, nextRetryAt, status, lastError, updatedAt) {
      const job = {
        id: id,
        type: type,
        operation: operation,
        payload: payloadJson === undefined ? undefined : JSON.parse(payloadJson),
        userId: userId,
        priority: priority,
        createdAt: new Date(createdAt),
        retryCount: retryCount,
        maxRetries: maxRetries,
      };
      if (nextRetryAt !== undefined) job.nextRetryAt = new Date(nextRetryAt);
      job.status = status;
      if (lastError !== undefined) job.lastError = lastError;
      job.updatedAt = new Date(updatedAt);
      return job;
    },

    queueStats(total, pending, processing, completed, failed) {
      return { total: total, pending: pending, processing: processing, completed: completed, failed: failed };
    },

    failure(service, operation, error, timestamp, skipReason) {
      return { service: service, operation: operation, error: error, timestamp: new Date(timestamp), skipReason: skipReason };
    },

    serviceStats(count, lastFailure) {
      return { count: count, lastFailure: new Date(lastFailure) };
    },
  };
})
