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

/** Sends `req` once and throws, naming `what`, the status and the start of the body, unless it answers 2xx. */
export async function expectOk(what: string, req: HttpRequest): Promise<void> {
	const res = await send(req)
	// A large body is not read: the status is what is checked.
	if (res.ok) return void (await res.body?.cancel())
	throw new Error(`${what} answered ${res.status}: ${(await res.text()).slice(0, 300)}`)
}
