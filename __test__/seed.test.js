'use strict'

// The user's usage document (__test__/fixtures/seed-usage.md), example by
// example. Each example's code is copied as written (types removed); the
// helpers it leaves undefined are mocked: a model that can go down, a flaky
// Facebook, an analytics outage, channels that fail. The assertions are what
// a user of each example would see.
//
// The document's last example imports `executeService` from
// `@/lib/error-handling-framework`; an app points that at this package.

const test = require('node:test')
const assert = require('node:assert/strict')

const {
  executeWithFallback,
  aiResponseCache,
  backgroundJobQueue,
  integrationFailureManager,
  getUserFriendlyMessage,
  executeService,
} = require('..')
const { MESSAGES, resetSingletons } = require('./helpers')

test.beforeEach(resetSingletons)

// --- mocked outside services -------------------------------------------

const model = {
  up: true,
  calls: 0,
  async invoke(prompt) {
    model.calls++
    if (!model.up) throw new Error('Bedrock: ThrottlingException')
    return { title: `Post about ${prompt}`, content: 'Generated content.' }
  },
}
const getBedrockClient = () => model
const outputSchema = {}

const facebook = { up: true, posts: 0 }
async function postToFacebook(contentId) {
  if (!facebook.up) throw new Error('Facebook Graph API: 503 Service Unavailable')
  facebook.posts++
  return { postId: `fb_${contentId}` }
}

const analytics = { up: true, synced: [] }
async function syncAnalyticsData(contentId) {
  if (!analytics.up) throw new Error('Analytics warehouse unreachable')
  analytics.synced.push(contentId)
  return { contentId, synced: true }
}
async function processAIJob() {}
async function processIntegrationJob() {}

const channels = { down: new Set() }
async function publishToChannel(channel, content) {
  if (channels.down.has(channel)) throw new Error(`${channel} is down`)
  return { channel, published: content.title }
}

// --- Example 1: AI Service with Cache Fallback ----------------------------

async function generateBlogPost(prompt, userId) {
  return executeWithFallback(
    async () => {
      const client = getBedrockClient();
      const result = await client.invoke(prompt, outputSchema);
      return result;
    },
    {
      operationName: "generate_blog_post",
      userId,
      cacheKey: {
        prompt,
        modelId: "anthropic.claude-3-5-sonnet-20241022-v2:0",
      },
      defaultValue: {
        title: "Blog Post",
        content:
          "Content generation temporarily unavailable. Please try again.",
      },
    }
  );
}

test('example 1: a failing model falls back to the cached post, then to the default', async () => {
  model.up = true
  const fresh = await generateBlogPost('real estate', 'user-1')
  assert.equal(fresh.success, true)
  assert.deepEqual(fresh.data, { title: 'Post about real estate', content: 'Generated content.' })
  assert.equal(fresh.metadata, undefined)

  model.up = false
  const cached = await generateBlogPost('real estate', 'user-1')
  assert.equal(cached.success, true)
  assert.deepEqual(cached.data, fresh.data)
  assert.equal(cached.message, MESSAGES.cache)
  assert.equal(cached.metadata.fallbackType, 'cache')

  const fallback = await generateBlogPost('gardening', 'user-1')
  assert.equal(fallback.success, true)
  assert.deepEqual(fallback.data, {
    title: 'Blog Post',
    content: 'Content generation temporarily unavailable. Please try again.',
  })
  assert.equal(fallback.message, MESSAGES.default)
  assert.equal(fallback.metadata.fallbackType, 'default')
  model.up = true
})

// --- Example 2: Integration Service with Skip Fallback --------------------

async function syncToSocialMedia(contentId, userId) {
  // Check if we should skip this service based on recent failures
  if (integrationFailureManager.shouldSkipService("facebook", 3)) {
    return {
      success: true,
      message:
        "Facebook integration temporarily disabled due to repeated failures",
      skipped: true,
    };
  }

  return executeWithFallback(
    async () => {
      // Attempt to post to Facebook
      const result = await postToFacebook(contentId);
      return result;
    },
    {
      operationName: "facebook_sync",
      userId,
      allowSkip: true, // Allow skipping on failure
    }
  );
}

test('example 2: a flaky Facebook is skipped and its failures are tracked', async () => {
  facebook.up = true
  const posted = await syncToSocialMedia('c1', 'user-1')
  assert.deepEqual(posted.data, { postId: 'fb_c1' })

  facebook.up = false
  for (let i = 0; i < 3; i++) {
    const skipped = await syncToSocialMedia('c2', 'user-1')
    assert.equal(skipped.success, true)
    assert.equal(skipped.message, MESSAGES.skip)
    assert.equal(skipped.metadata.fallbackType, 'skip')
  }
  // The example records failures under its operationName, "facebook_sync";
  // its up-front check asks about "facebook", so it keeps calling Facebook.
  // (Passing `service: "facebook"` makes the two agree: see the README.)
  assert.equal(integrationFailureManager.shouldSkipService('facebook_sync', 3), true)
  assert.equal(integrationFailureManager.shouldSkipService('facebook', 3), false)
  const [failure] = integrationFailureManager.getFailures('facebook_sync')
  assert.equal(failure.error, 'Facebook Graph API: 503 Service Unavailable')

  // Once failures are recorded under "facebook", the example skips up front.
  for (let i = 0; i < 3; i++) integrationFailureManager.recordFailure('facebook', 'post', 'down', 'r')
  const postsBefore = facebook.posts
  facebook.up = true
  const upFront = await syncToSocialMedia('c3', 'user-1')
  assert.deepEqual(upFront, {
    success: true,
    message: 'Facebook integration temporarily disabled due to repeated failures',
    skipped: true,
  })
  assert.equal(facebook.posts, postsBefore, 'Facebook was not called')
})

// --- Example 3: Background Job Queue ---------------------------------------

async function processAnalytics(contentId, userId) {
  return executeWithFallback(
    async () => {
      // Attempt to process analytics immediately
      const result = await syncAnalyticsData(contentId);
      return result;
    },
    {
      operationName: "process_analytics",
      userId,
      queueOnFailure: {
        type: "analytics",
        payload: { contentId },
        priority: "low", // Analytics can be processed later
      },
    }
  );
}

// Process queued jobs
async function processQueuedJobs() {
  const job = backgroundJobQueue.dequeue();

  if (!job) {
    return; // No jobs to process
  }

  try {
    // Process the job based on type
    switch (job.type) {
      case "analytics":
        await syncAnalyticsData(job.payload.contentId);
        break;
      case "ai":
        await processAIJob(job.payload);
        break;
      case "integration":
        await processIntegrationJob(job.payload);
        break;
    }

    backgroundJobQueue.complete(job.id);
  } catch (error) {
    backgroundJobQueue.fail(job.id, error.message);
  }
}

test('example 3: an analytics outage queues the work; the worker finishes it later', async () => {
  analytics.up = false
  analytics.synced = []
  const queued = await processAnalytics('post-7', 'user-1')
  assert.equal(queued.success, true)
  assert.equal(queued.message, MESSAGES.queue)
  assert.equal(queued.metadata.fallbackType, 'queue')
  const jobId = queued.metadata.jobId
  assert.equal(backgroundJobQueue.getStats().pending, 1)

  // Still down: the worker's attempt fails and the job waits for its retry.
  await processQueuedJobs()
  let job = backgroundJobQueue.getAll().find((j) => j.id === jobId)
  assert.equal(job.status, 'pending')
  assert.equal(job.retryCount, 1)
  assert.equal(job.lastError, 'Analytics warehouse unreachable')
  assert.ok(job.nextRetryAt > new Date())
  assert.equal(backgroundJobQueue.dequeue(), null, 'not ready before its retry time')

  // Back up: a fresh outage job is processed and completed.
  const second = await processAnalytics('post-8', 'user-1')
  analytics.up = true
  await processQueuedJobs()
  job = backgroundJobQueue.getAll().find((j) => j.id === second.metadata.jobId)
  assert.equal(job.status, 'completed')
  assert.deepEqual(analytics.synced, ['post-8'])
  await processQueuedJobs() // nothing ready: returns quietly
})

// --- Example 4: Comprehensive Fallback Strategy ----------------------------

async function generateAndPublishContent(
  prompt,
  userId,
  publishChannels
) {
  // Step 1: Generate content with cache fallback
  const contentResult = await executeWithFallback(
    async () => {
      const client = getBedrockClient();
      return await client.invoke(prompt, outputSchema);
    },
    {
      operationName: "generate_content",
      userId,
      cacheKey: { prompt, modelId: "claude-3-5-sonnet" },
    }
  );

  if (!contentResult.success) {
    return {
      success: false,
      error: "Failed to generate content",
    };
  }

  // Step 2: Publish to channels with skip fallback
  const publishResults = await Promise.all(
    publishChannels.map((channel) =>
      executeWithFallback(
        async () => {
          return await publishToChannel(channel, contentResult.data);
        },
        {
          operationName: `publish_${channel}`,
          userId,
          allowSkip: true, // Skip failed channels
          queueOnFailure: {
            type: "integration",
            payload: { channel, content: contentResult.data },
            priority: "medium",
          },
        }
      )
    )
  );

  return {
    success: true,
    content: contentResult.data,
    published: publishResults.filter((r) => r.success).length,
    queued: publishResults.filter((r) => r.metadata?.fallbackType === "queue")
      .length,
    skipped: publishResults.filter((r) => r.metadata?.fallbackType === "skip")
      .length,
  };
}

test('example 4: content from the model, failed channels queued for later', async () => {
  model.up = true
  channels.down = new Set(['linkedin'])
  const result = await generateAndPublishContent('open house', 'user-2', ['facebook', 'linkedin', 'x'])
  assert.deepEqual(result, {
    success: true,
    content: { title: 'Post about open house', content: 'Generated content.' },
    published: 3, // a queued channel counts as a success
    queued: 1,
    skipped: 0,
  })
  const [job] = backgroundJobQueue.getByUser('user-2')
  assert.equal(job.operation, 'publish_linkedin')
  assert.equal(job.type, 'integration')
  assert.deepEqual(job.payload, { channel: 'linkedin', content: result.content })
})

test('example 4: with the model down and nothing cached, it reports the failure', async () => {
  model.up = false
  const result = await generateAndPublishContent('never generated', 'user-2', ['facebook'])
  assert.deepEqual(result, { success: false, error: 'Failed to generate content' })
  model.up = true
})

test('example 4: with the model down, the cached content is still published', async () => {
  model.up = true
  channels.down = new Set()
  await generateAndPublishContent('market update', 'user-3', [])
  model.up = false
  const result = await generateAndPublishContent('market update', 'user-3', ['facebook'])
  assert.equal(result.success, true)
  assert.deepEqual(result.content, { title: 'Post about market update', content: 'Generated content.' })
  assert.equal(result.published, 1)
  model.up = true
})

// --- Example 5: Manual Cache Management ------------------------------------

test('example 5: manual cache management', () => {
  const logs = []
  const console = { log: (...args) => logs.push(args) }

  // Manually cache a response
  aiResponseCache.set(
    "Generate a blog post about real estate",
    { title: "Real Estate Guide", content: "..." },
    "claude-3-5-sonnet",
    7 * 24 * 60 * 60 * 1000 // 7 days TTL
  );

  // Retrieve cached response
  const cached = aiResponseCache.get(
    "Generate a blog post about real estate",
    "claude-3-5-sonnet"
  );

  if (cached) {
    console.log("Using cached response from", cached.timestamp);
  }

  // Get cache statistics
  const stats = aiResponseCache.getStats();
  console.log(`Cache has ${stats.size} entries`);

  assert.equal(logs[0][0], 'Using cached response from')
  assert.ok(logs[0][1] instanceof Date)
  assert.deepEqual(logs[1], ['Cache has 1 entries'])
  assert.equal(cached.expiresAt - cached.timestamp, 7 * 24 * 60 * 60 * 1000)

  // Clear specific cache
  aiResponseCache.delete(
    "Generate a blog post about real estate",
    "claude-3-5-sonnet"
  );
  assert.equal(aiResponseCache.get('Generate a blog post about real estate', 'claude-3-5-sonnet'), null)

  // Clear all cache
  aiResponseCache.set('another', 1, 'claude-3-5-sonnet')
  aiResponseCache.clear();
  assert.equal(aiResponseCache.getStats().size, 0)
})

// --- Example 6: Queue Management -------------------------------------------

test('example 6: queue management', () => {
  const logs = []
  const console = { log: (...args) => logs.push(args.join(' ')) }
  const base = { type: 'ai', operation: 'op', payload: {}, priority: 'medium', retryCount: 0, maxRetries: 1 }
  backgroundJobQueue.enqueue({ ...base, userId: 'user123' })
  const failing = backgroundJobQueue.enqueue({ ...base, userId: 'user123' })
  const done = backgroundJobQueue.enqueue({ ...base, userId: 'someone else' })
  backgroundJobQueue.fail(failing, 'gave up')
  backgroundJobQueue.complete(done)

  // Get queue statistics
  const stats = backgroundJobQueue.getStats();
  console.log(`Queue: ${stats.pending} pending, ${stats.failed} failed`);

  // Get all pending jobs
  const pendingJobs = backgroundJobQueue.getByStatus("pending");

  // Get jobs for specific user
  const userJobs = backgroundJobQueue.getByUser("user123");

  // Clear completed jobs
  backgroundJobQueue.clearCompleted();

  assert.deepEqual(logs, ['Queue: 1 pending, 1 failed'])
  assert.equal(pendingJobs.length, 1)
  assert.equal(userJobs.length, 2)
  assert.equal(backgroundJobQueue.getStats().completed, 0)
  assert.equal(backgroundJobQueue.getStats().total, 2)
})

// --- Example 7: Integration Failure Tracking -------------------------------

test('example 7: integration failure tracking', () => {
  const logs = []
  const console = { log: (...args) => logs.push(args.join(' ')) }
  for (let i = 0; i < 3; i++) integrationFailureManager.recordFailure('instagram', 'post', 'timeout', 'r')

  // Check if service should be skipped
  if (integrationFailureManager.shouldSkipService("instagram", 3)) {
    console.log("Instagram has failed 3+ times in last 5 minutes, skipping");
  }

  // Get failure statistics
  const stats = integrationFailureManager.getStats();
  Object.entries(stats).forEach(([service, data]) => {
    console.log(
      `${service}: ${data.count} failures, last at ${data.lastFailure}`
    );
  });

  // Clear failures for a service (after fixing the issue)
  integrationFailureManager.clearFailures("instagram");

  assert.equal(logs[0], 'Instagram has failed 3+ times in last 5 minutes, skipping')
  assert.match(logs[1], /^instagram: 3 failures, last at \w{3} \w{3} \d{2} \d{4}/)
  assert.equal(integrationFailureManager.shouldSkipService('instagram', 3), false)
})

// --- Example 8: User-Friendly Error Messages -------------------------------

test('example 8: a friendly message for a failed call', async () => {
  const toasts = []
  const showToast = (message) => toasts.push(message)
  const someOperation = async () => { throw new Error('ECONNRESET') }

  try {
    await someOperation();
  } catch (error) {
    const message = getUserFriendlyMessage(error, "cache");
    // "We encountered an issue, but don't worry! We're showing you a previous result while we work on this."

    showToast(message);
  }

  assert.deepEqual(toasts, ["We encountered an issue, but don't worry! We're showing you a previous result while we work on this."])
})

// --- Integration with the error-handling framework ---------------------------

test('the error-handling framework example: retries around the fallbacks', async () => {
  let calls = 0
  const someRiskyOperation = async () => {
    calls++
    if (calls < 2) throw new Error('transient')
    return { answer: 'from the risky operation' }
  }

  // Combine both for comprehensive error handling
  async function robustOperation(userId) {
    return executeService(
      async () => {
        return executeWithFallback(
          async () => {
            // Your operation here
            return await someRiskyOperation();
          },
          {
            operationName: "risky_operation",
            userId,
            cacheKey: { prompt: "key", modelId: "model" },
            queueOnFailure: {
              type: "ai",
              payload: {},
              priority: "medium",
            },
          }
        );
      },
      {
        operation: "robust_operation",
        userId,
        timestamp: new Date(),
      },
      {
        maxRetries: 3,
      }
    );
  }

  // First call: the risky operation fails once; executeWithFallback queues it
  // (nothing cached yet), which is a success for executeService.
  const first = await robustOperation('user-9')
  assert.equal(first.success, true)
  assert.equal(first.metadata.attempts, 1)
  assert.equal(first.data.metadata.fallbackType, 'queue')
  // Second call: the operation works and its answer is cached.
  const second = await robustOperation('user-9')
  assert.deepEqual(second.data.data, { answer: 'from the risky operation' })
  assert.deepEqual(aiResponseCache.get('key', 'model').response, { answer: 'from the risky operation' })
})
