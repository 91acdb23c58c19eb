// The usage document's scenarios, as server code. The bodies follow the
// document; where it leaves a helper undefined, ./services simulates it.

import {
  executeWithFallback,
  backgroundJobQueue,
  integrationFailureManager,
  type JobHandler,
  type JobType,
  type QueuedJob,
} from "@/lib/fallback-mechanisms";
import {
  getBedrockClient,
  outputSchema,
  postToFacebook,
  processAIJob,
  processIntegrationJob,
  publishToChannel,
  syncAnalyticsData,
} from "./services";

export const MODEL_ID = "anthropic.claude-3-5-sonnet-20241022-v2:0";

// Example 1: AI service with cache fallback.
export async function generateBlogPost(prompt: string, userId: string) {
  return executeWithFallback(
    async () => {
      const client = getBedrockClient();
      const result = await client.invoke(prompt, outputSchema);
      return result;
    },
    {
      operationName: "generate_blog_post",
      userId,
      cacheKey: { prompt, modelId: MODEL_ID },
      defaultValue: {
        title: "Blog Post",
        content: "Content generation temporarily unavailable. Please try again.",
      },
    },
  );
}

// Example 2: integration with skip fallback, skipped up front once it keeps
// failing. `service: "facebook"` records failures under the name the
// up-front check asks about.
export async function syncToSocialMedia(contentId: string, userId: string) {
  if (integrationFailureManager.shouldSkipService("facebook", 3)) {
    return {
      success: true,
      message: "Facebook integration temporarily disabled due to repeated failures",
      skipped: true,
    };
  }
  return executeWithFallback(
    async () => {
      const result = await postToFacebook(contentId);
      return result;
    },
    {
      operationName: "facebook_sync",
      service: "facebook",
      userId,
      allowSkip: true,
    },
  );
}

// Example 3: work that can wait is queued.
export async function processAnalytics(contentId: string, userId: string) {
  return executeWithFallback(
    async () => {
      const result = await syncAnalyticsData(contentId);
      return result;
    },
    {
      operationName: "process_analytics",
      userId,
      queueOnFailure: {
        type: "analytics",
        payload: { contentId },
        priority: "low",
      },
    },
  );
}

// Example 3's worker: one ready job; returns what happened to it.
export async function processQueuedJobs(): Promise<{ id: string; outcome: "completed" | "failed" } | null> {
  const job = backgroundJobQueue.dequeue();
  if (!job) {
    return null;
  }
  try {
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
    return { id: job.id, outcome: "completed" };
  } catch (error) {
    backgroundJobQueue.fail(job.id, error.message);
    return { id: job.id, outcome: "failed" };
  }
}

// Example 3's switch as handlers by job type, for backgroundJobQueue.drain
// (the cron route): each resolves to complete its job, or throws to fail it.
export const jobHandlers = {
  analytics: async (job: QueuedJob) => {
    await syncAnalyticsData(job.payload.contentId);
  },
  ai: (job: QueuedJob) => processAIJob(job.payload),
  integration: (job: QueuedJob) => processIntegrationJob(job.payload),
  // As in the switch: nothing to do, the job completes.
  notification: async () => {},
} satisfies Partial<Record<JobType, JobHandler>>;

// Example 4: generate, then publish to several channels (skip or queue).
export async function generateAndPublishContent(prompt: string, userId: string, publishChannels: string[]) {
  const contentResult = await executeWithFallback(
    async () => {
      const client = getBedrockClient();
      return await client.invoke(prompt, outputSchema);
    },
    {
      operationName: "generate_content",
      userId,
      cacheKey: { prompt, modelId: "claude-3-5-sonnet" },
    },
  );

  if (!contentResult.success) {
    return { success: false, error: "Failed to generate content" };
  }

  const publishResults = await Promise.all(
    publishChannels.map((channel) =>
      executeWithFallback(
        async () => {
          return await publishToChannel(channel, contentResult.data);
        },
        {
          operationName: `publish_${channel}`,
          userId,
          allowSkip: true,
          queueOnFailure: {
            type: "integration",
            payload: { channel, content: contentResult.data },
            priority: "medium",
          },
        },
      ),
    ),
  );

  return {
    success: true,
    content: contentResult.data,
    published: publishResults.filter((r) => r.success).length,
    queued: publishResults.filter((r) => r.metadata?.fallbackType === "queue").length,
    skipped: publishResults.filter((r) => r.metadata?.fallbackType === "skip").length,
  };
}
