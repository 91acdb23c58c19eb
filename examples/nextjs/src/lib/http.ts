// Small helpers for the route handlers.

export async function body<T>(request: Request): Promise<Partial<T>> {
  try {
    return (await request.json()) as Partial<T>;
  } catch {
    return {};
  }
}

export function json(data: unknown, status = 200): Response {
  return Response.json(data, { status });
}
