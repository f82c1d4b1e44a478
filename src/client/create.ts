import { type Treaty, treaty } from '@elysiajs/eden'
import type { App } from '../app'
import type { FetchLike } from './request'

/** How a typed client authenticates to the token and lifecycle routes, and how it sends requests. */
export interface ClientOptions {
	/** A service key, sent as `X-API-Key` (may act for any user). */
	readonly apiKey?: string
	/** The app's own user access token, sent as `Authorization: Bearer` (acts for its own user only). */
	readonly accessToken?: string
	/** The `fetch` Eden sends with (default: the global one), e.g. to add a proxy, a log line or a fault. */
	readonly fetch?: FetchLike
}

/** The typed Eden Treaty client of download-gate. */
export type DownloadGateClient = Treaty.Create<App>

/**
 * Builds a typed Eden Treaty client for a download-gate at `baseUrl`, e.g.
 * `createClient('https://files.example.com', { apiKey })`.
 *
 * Path parameters are passed one segment at a time and are **not**
 * percent-encoded by Eden: encode filenames yourself
 * (`({ filename: encodeURIComponent(name) })`). Date-like strings are left as
 * strings (`parseDate: false`), so `expires_at` is the string its type says.
 * A request that gets no answer (connection refused, aborted) resolves with
 * `error.status` 503 and the thrown error as `error.value`.
 *
 * @example
 * const client = createClient(base, { apiKey })
 * const { data, error } = await client.api['get-download-token']({ user_id: '123' })({ filename: 'v.mp4' })
 *   .get({ query: { ttl: 60 } })
 */
export function createClient(baseUrl: string, options: ClientOptions = {}): DownloadGateClient {
	const headers: Record<string, string> = {}
	if (options.apiKey !== undefined) headers['x-api-key'] = options.apiKey
	if (options.accessToken !== undefined) headers.authorization = `Bearer ${options.accessToken}`
	const custom = options.fetch
	// Eden wants Bun's whole `fetch` (with `preconnect`); a FetchLike only has to send.
	const fetcher =
		custom &&
		Object.assign((input: string | URL | Request, init?: RequestInit) => custom(input, init), {
			preconnect: fetch.preconnect,
		})
	return treaty<App>(baseUrl, { headers, parseDate: false, ...(fetcher ? { fetcher } : {}) })
}
