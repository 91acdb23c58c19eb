// Helpers the usage document's examples call but do not define.
declare const outputSchema: unknown;
declare function getBedrockClient(): {
  invoke(prompt: string, schema: unknown): Promise<{ title: string; content: string }>;
};
declare function postToFacebook(contentId: string): Promise<{ postId: string }>;
declare function syncAnalyticsData(contentId: string): Promise<unknown>;
declare function processAIJob(payload: unknown): Promise<void>;
declare function processIntegrationJob(payload: unknown): Promise<void>;
declare function publishToChannel(channel: string, content: unknown): Promise<unknown>;
declare function someOperation(): Promise<void>;
declare function someRiskyOperation(): Promise<unknown>;
declare function showToast(message: string): void;
