/** One HTTP request a load driver repeats: a URL and its headers. */
export interface HttpRequest {
	readonly url: string
	readonly headers?: Readonly<Record<string, string>>
}

/** `headers` as curl `-H` arguments. */
export function curlHeaderArgs(req: HttpRequest): string[] {
	return Object.entries(req.headers ?? {}).flatMap(([name, value]) => ['-H', `${name}: ${value}`])
}

/** Sends `req` once with fetch (setup steps, not load). */
export function send(req: HttpRequest, init: RequestInit = {}): Promise<Response> {
	return fetch(req.url, { ...init, headers: { ...req.headers, ...(init.headers as Record<string, string>) } })
}
