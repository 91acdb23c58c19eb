// The application's own Bedrock client, as the usage document imports it.
export declare function getBedrockClient(): {
  invoke(prompt: string, schema: unknown): Promise<{ title: string; content: string }>;
};
