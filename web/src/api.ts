// JSON calls to the gateway. Every call sends a custom header and (with a body) a JSON content
// type: with the gateway's Origin check, that is what keeps other sites from driving a session.

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { 'x-phirepass': '1' };
  const init: RequestInit = { method, credentials: 'same-origin', cache: 'no-store', headers };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const reply = await fetch(path, init);
  let data: any = null;
  try {
    data = await reply.json();
  } catch {
    data = null;
  }
  if (!reply.ok) {
    throw new ApiError(reply.status, data?.error ?? `${reply.status} ${reply.statusText}`);
  }
  return data as T;
}

export interface Me {
  id: string;
  username: string;
  admin: boolean;
}

export async function me(): Promise<Me | null> {
  try {
    return await api<Me>('GET', '/api/auth/me');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

/// Where to go after logging in: only a page of this site. The URL parser decides, not a
/// prefix check: it reads `/\evil`, `/\t/evil` and `//evil` as another host, and a path such as
/// `/.//evil` normalises to `//evil`, so the answer is the resolved absolute URL, never a path.
export function nextPath(): string {
  return safeNext(new URLSearchParams(location.search).get('next'), location.origin);
}

/// `next` resolved against `origin` when it stays there and names a path (`/...`); else `/`.
export function safeNext(next: string | null, origin: string): string {
  if (!next || !next.startsWith('/')) return origin + '/';
  let url: URL;
  try {
    url = new URL(next, origin + '/');
  } catch {
    return origin + '/';
  }
  return url.origin === origin ? url.href : origin + '/';
}

export function toLogin(): void {
  location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search);
}
