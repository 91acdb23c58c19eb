// The application's error-handling framework that the document's last example
// imports. Not part of this package yet (it comes with the retry/circuit
// breaker work); declared here with the shape the example uses.
import type { ServiceResult } from "fallback-mechanisms";

export declare function executeService<T>(
  operation: () => Promise<T>,
  context: { operation: string; userId?: string; timestamp: Date },
  options?: { maxRetries?: number; baseDelay?: number; maxDelay?: number },
): Promise<ServiceResult<T>>;
